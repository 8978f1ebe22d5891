"""The command API's own problem types (catalogue entries, ``shared.web.problem_catalogue``).

The runtime raises them (``write_side.http.errors``, ``write_side.http.preconditions``) and the
routes document them (``write_side.http.docs``). Rule names come from the domain's ``Rule``, so
the documentation lists exactly the names the API can send.
"""

from __future__ import annotations

from shared.web.problem_catalogue import RETRY_AFTER, ProblemType
from write_side.domain.rules import Rule

# Every rule name a ``rule-violation`` can carry: the domain's, so none can be missing or made up.
RULE_NAMES = tuple(rule.value for rule in Rule)
_RULES = ", ".join(f"`{name}`" for name in RULE_NAMES)

RULE_VIOLATION = ProblemType(
    "rule-violation",
    409,
    "Business rule violated",
    f"A business rule forbids the command in the order's current state; ``rule`` names it, "
    f"one of {_RULES}",
    {"detail": "an order needs at least one item", "rule": Rule.PLACE_REQUIRES_ITEMS.value},
)
CONCURRENT_MODIFICATION = ProblemType(
    "concurrent-modification",
    409,
    "Concurrent modification",
    "Concurrent writers kept changing the order while the command was decided, past the "
    "retries; retry it after Retry-After seconds",
    {"detail": "the order kept changing while this command was decided; retry it"},
    headers=RETRY_AFTER,
)
VERSION_MISMATCH = ProblemType(
    "version-mismatch",
    412,
    "Precondition failed",
    "If-Match named a version the order is not at (or a tag that can never be a version); "
    "``current_version`` says where it is",
    {
        "detail": "If-Match named version 3 but the order is at version 4",
        "expected_version": 3,
        "current_version": 4,
    },
)
MALFORMED_IF_MATCH = ProblemType(
    "malformed-if-match",
    400,
    "Malformed If-Match",
    'If-Match is neither "*" nor a list of entity tags, or it names several versions',
    {"detail": 'If-Match must be "*" or a list of entity tags such as "3"'},
)
INVALID_IDEMPOTENCY_KEY = ProblemType(
    "invalid-idempotency-key",
    400,
    "Invalid Idempotency-Key",
    "The Idempotency-Key header does not have the form its description states",
    {"detail": "Idempotency-Key: <the form the header's description states>"},
)

WRITE_PROBLEMS = (
    RULE_VIOLATION,
    CONCURRENT_MODIFICATION,
    VERSION_MISMATCH,
    MALFORMED_IF_MATCH,
    INVALID_IDEMPOTENCY_KEY,
)
