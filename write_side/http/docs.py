"""OpenAPI descriptions of the command API's error responses, so ``/docs`` shows every shape.

Each set names the catalogue entries a kind of route can answer; the examples and descriptions
come from the entries (``shared.web.problem_docs``). The limits of the process serving the API
(body size, timeouts, load) are added to every operation by ``orders_api.openapi``.
"""

from __future__ import annotations

from shared.web.consistency_token import TOKEN_FORMAT
from shared.web.problem_catalogue import (
    HTTP_ERROR,
    MALFORMED_JSON,
    ORDER_NOT_FOUND,
    STORE_UNAVAILABLE,
    VALIDATION_FAILED,
)
from shared.web.problem_docs import problem_responses
from write_side.http.preconditions import ETAG_FORMAT
from write_side.http.problems import (
    CONCURRENT_MODIFICATION,
    INVALID_IDEMPOTENCY_KEY,
    MALFORMED_IF_MATCH,
    RULE_VIOLATION,
    VERSION_MISMATCH,
)

# Every command: its headers and fields are checked, its rules decided, its events stored.
_ANY_COMMAND = (INVALID_IDEMPOTENCY_KEY, VALIDATION_FAILED, RULE_VIOLATION, STORE_UNAVAILABLE)
# A command with a JSON body.
_WITH_BODY = (MALFORMED_JSON, HTTP_ERROR)
# A command on an existing order (If-Match; concurrent writers on the same stream).
_ON_ORDER = (MALFORMED_IF_MATCH, ORDER_NOT_FOUND, VERSION_MISMATCH, CONCURRENT_MODIFICATION)

CREATE_PROBLEMS = problem_responses(*_ANY_COMMAND, *_WITH_BODY)
ON_ORDER_PROBLEMS = problem_responses(*_ANY_COMMAND, *_WITH_BODY, *_ON_ORDER)
ON_ORDER_WITHOUT_BODY_PROBLEMS = problem_responses(*_ANY_COMMAND, *_ON_ORDER)

SUCCESS_HEADERS = {
    "ETag": {"description": 'the order\'s version, "<version>"', "schema": ETAG_FORMAT},
    "X-Consistency-Token": {
        "description": "commit position to pass to the read side to read this write",
        "schema": TOKEN_FORMAT,
    },
    "X-Correlation-ID": {
        "description": "the request's correlation id",
        "schema": {"type": "string"},
    },
}
