"""The consistency token: the commit position a command answers in ``X-Consistency-Token`` and
a query sends back to read its own write.

One definition for the runtime check (``read_side.deps``) and the OpenAPI document (the request
header of every query, the response header of every command). EventStoreDB keeps commit
positions as signed 64-bit integers, and the read models store them as MongoDB int64, so every
real position is a decimal of at most 19 digits.
"""

from __future__ import annotations

import re
from typing import Any

_DIGITS = 19
TOKEN = re.compile(rf"0|[1-9][0-9]{{0,{_DIGITS - 1}}}")
TOKEN_FORMAT: dict[str, Any] = {
    "type": "string",
    "pattern": f"^({TOKEN.pattern})$",
    "maxLength": _DIGITS,
}


def position_of(token: str) -> int | None:
    """The commit position a token names, or None when it is malformed."""
    return int(token) if TOKEN.fullmatch(token) else None
