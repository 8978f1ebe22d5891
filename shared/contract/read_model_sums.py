"""How a read model stores a sum, exact whatever its size: the projector writes with
``stored_sum``, the read side reads with ``sum_of``.

Read models add amounts across orders (a day's revenue, a customer's lifetime payments). One
order's total may reach 10^17 minor units (``write_side/domain/limits.py``), so 93 maximal
orders in a day, or of one customer, add up beyond what MongoDB stores as an integer (BSON
int64, at most 2^63-1). Such a document could not be written at all: the projection would
fail on the same batch forever, stalled for every user by a client's few hundred requests.

The rule: a sum within int64 is stored as an int (every ordinary document looks as it always
did); a sum beyond it is stored as its exact decimal string (93 x 10^17 as
``"9300000000000000000"``). Readers get an int back either way. Such sums are not compared or
added inside MongoDB (the projections fold in Python and the read side adds up days in
Python), so the mixed type costs no query.
"""

from __future__ import annotations

import re

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

type StoredSum = int | str

_DECIMAL = re.compile(r"-?[0-9]+")


def stored_sum(value: int) -> StoredSum:
    """``value`` as a read model stores it: the int itself within int64, else its decimal
    string."""
    return value if INT64_MIN <= value <= INT64_MAX else str(value)


def sum_of(stored: object) -> int:
    """The int behind a stored sum (an int, or a decimal string written by ``stored_sum``).
    Anything else (a float, a bool, other text) is not a sum this rule wrote: ``ValueError``."""
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    if isinstance(stored, str) and _DECIMAL.fullmatch(stored):
        return int(stored)
    raise ValueError(f"not a stored sum: {stored!r}")
