"""The query API's own problem types (catalogue entries, ``shared.web.problem_catalogue``).

The runtime raises them (``read_side.deps``, ``read_side.http``) and the routes document them
(``read_side.http_docs``).
"""

from __future__ import annotations

from shared.web.problem_catalogue import RETRY_AFTER, ProblemType

MALFORMED_CONSISTENCY_TOKEN = ProblemType(
    "malformed-consistency-token",
    400,
    "Malformed consistency token",
    "X-Consistency-Token is not a commit position a command returned",
    {
        "detail": "X-Consistency-Token must be the decimal commit position a command returned "
        "(its X-Consistency-Token header or `position` field)"
    },
)
MALFORMED_CURSOR = ProblemType(
    "malformed-cursor",
    400,
    "Malformed cursor",
    "The cursor is not a next_cursor this API issued",
    {"detail": "malformed cursor: pass the next_cursor of the previous page unchanged"},
)
TOO_MANY_WAITING_READS = ProblemType(
    "too-many-waiting-reads",
    503,
    "Too many waiting reads",
    "READ_WAIT_MAX_WAITERS reads with a consistency token are waiting already: this one, "
    "which would have to wait too, is refused at once; retry after Retry-After seconds, or "
    "read without X-Consistency-Token",
    {
        "detail": "500 reads are already waiting for their consistency token; retry later, or "
        "read without X-Consistency-Token"
    },
    headers=RETRY_AFTER,
)
# The status a waiting read ends with when its client leaves: for metrics and logs only, since
# nobody is left to read it.
CLIENT_CLOSED_REQUEST = ProblemType(
    "client-closed-request",
    499,
    "Client closed request",
    "The client left while the read waited for its consistency token",
    {"detail": "the client left while the read waited"},
    reaches_client=False,
)

READ_PROBLEMS = (
    MALFORMED_CONSISTENCY_TOKEN,
    MALFORMED_CURSOR,
    TOO_MANY_WAITING_READS,
    CLIENT_CLOSED_REQUEST,
)
