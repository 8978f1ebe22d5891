"""Request headers that shape a command: ``If-Match`` (a pinned version) and ``Idempotency-Key``.

Versions travel as strong entity tags, ``ETag: "<version>"``. RFC 9110 leaves the handling of an
unparsable ``If-Match`` to the server; this API answers:

- no header, or ``*``: no pin (``*`` asks only that the order exists, which every command on an
  existing order needs anyway: a missing order is 404, as RFC 9110 §13.2.1 lets a server answer
  when the request would fail without the precondition too);
- one strong tag ``"<n>"``: the command runs only if the order is at version n, else 412;
- well-formed tags none of which can ever be one of our ETags (weak ``W/"3"``, opaque ``"abc"``):
  412, since the strong comparison RFC 9110 requires for ``If-Match`` cannot succeed;
- several distinct version tags: 400, because a command pins exactly one version;
- anything that is not ``"*"`` or a list of entity tags: 400 (malformed header).

Several ``If-Match`` field lines are one list, the same as their values joined by commas (RFC
9110 §5.3), so a caller passes every line. The OpenAPI document shows the two forms a client
needs, ``*`` and one version tag, with the format defined here (``IF_MATCH_FORMAT``); the list
forms above are what RFC 9110 obliges a server to understand besides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shared.web.problem_details import ProblemError
from write_side.commands import MAX_IDEMPOTENCY_KEY_LENGTH
from write_side.http.problems import (
    INVALID_IDEMPOTENCY_KEY,
    MALFORMED_IF_MATCH,
    VERSION_MISMATCH,
)

# One list element: optional weak prefix and a quoted opaque tag, then a comma or the end.
# Empty elements are allowed by the list syntax of RFC 9110 §5.6.1.
_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|$)')
# Stream revisions are 64-bit integers: at most 19 decimal digits, no leading zero.
_VERSION_DIGITS = 19
_VERSION_PATTERN = rf"0|[1-9][0-9]{{0,{_VERSION_DIGITS - 1}}}"
_VERSION = re.compile(_VERSION_PATTERN)
# The formats the OpenAPI document gives: the ETag a command answers, and what If-Match sends.
ETAG_FORMAT: dict[str, Any] = {
    "type": "string",
    "pattern": f'^"({_VERSION_PATTERN})"$',
    "maxLength": _VERSION_DIGITS + 2,
}
IF_MATCH_FORMAT: dict[str, Any] = {
    "type": "string",
    "pattern": rf'^(\*|"({_VERSION_PATTERN})")$',
    "maxLength": _VERSION_DIGITS + 2,
}

# At least 16 characters: keys name orders globally, so they must be random enough; at most what
# a command carries.
_KEY_LENGTH = (16, MAX_IDEMPOTENCY_KEY_LENGTH)
_KEY_CHARACTERS = "A-Za-z0-9._:~+/=-"
IDEMPOTENCY_KEY = re.compile(rf"[{_KEY_CHARACTERS}]{{{_KEY_LENGTH[0]},{_KEY_LENGTH[1]}}}")
IDEMPOTENCY_KEY_FORMAT: dict[str, Any] = {
    "type": "string",
    "pattern": f"^{IDEMPOTENCY_KEY.pattern}$",
    "minLength": _KEY_LENGTH[0],
    "maxLength": _KEY_LENGTH[1],
}
IDEMPOTENCY_KEY_RULE = (
    f"{_KEY_LENGTH[0]} to {_KEY_LENGTH[1]} characters from A-Z a-z 0-9 . _ : ~ + / = - (a UUID "
    "fits); keys name orders globally, so they must be random enough not to collide with "
    "another client's"
)


def _entity_tags(value: str) -> list[tuple[bool, str]]:
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(value):
        match = _ELEMENT.match(value, position)
        if match is None or match.end() == position:
            raise ProblemError(
                MALFORMED_IF_MATCH, 'If-Match must be "*" or a list of entity tags such as "3"'
            )
        if match.group(2) is not None:
            tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    if not tags:
        raise ProblemError(MALFORMED_IF_MATCH, "If-Match names no entity tag")
    return tags


def expected_version_from_if_match(lines: Sequence[str] | str | None) -> int | None:
    """The version the ``If-Match`` field lines pin, or None when they pin none (module doc).
    Several lines are one comma-separated list."""
    if isinstance(lines, str):
        lines = [lines]
    if not lines:
        return None
    value = ", ".join(lines)
    if value.strip() == "*":
        return None
    versions = {
        int(opaque)
        for weak, opaque in _entity_tags(value)
        if not weak and _VERSION.fullmatch(opaque)
    }
    if not versions:
        raise ProblemError(
            VERSION_MISMATCH,
            'no entity tag in If-Match can match: versions are strong tags of the form "<n>"',
        )
    if len(versions) > 1:
        raise ProblemError(
            MALFORMED_IF_MATCH, "If-Match names several versions; a command pins exactly one"
        )
    return versions.pop()


def checked_idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header, validated; None when absent."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise ProblemError(INVALID_IDEMPOTENCY_KEY, f"Idempotency-Key: {IDEMPOTENCY_KEY_RULE}")
    return value
