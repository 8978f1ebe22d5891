"""OpenAPI descriptions of the command API's error responses, so ``/docs`` shows every shape."""

from __future__ import annotations

from typing import Any

from shared.web.consistency_token import TOKEN_FORMAT
from shared.web.problem_details import PROBLEM_JSON, PROBLEM_TYPE_BASE, Problem
from write_side.http.preconditions import ETAG_FORMAT

_EXAMPLES: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "Malformed JSON, or a malformed If-Match / Idempotency-Key header",
        {
            "title": "Malformed JSON",
            "detail": "the request body is not valid JSON: Expecting value",
        },
    ),
    404: ("No such order", {"title": "Order not found", "detail": "no order 0b6f1c1e-…"}),
    409: (
        "A business rule forbids the command in the order's current state (``rule`` names it)",
        {
            "title": "Business rule violated",
            "detail": "items can only change while the order is a draft",
            "rule": "order_must_be_draft",
        },
    ),
    412: (
        "If-Match named a version the order is no longer at",
        {"title": "Precondition failed", "detail": "the order is at version 4, not 3"},
    ),
    413: ("The request body is larger than the limit", {"title": "Content too large"}),
    422: (
        "The body failed validation; ``errors`` lists each field",
        {
            "title": "Validation failed",
            "detail": "body.quantity: Input should be a valid integer",
            "errors": [
                {
                    "field": "body.quantity",
                    "message": "Input should be a valid integer",
                    "type": "int_type",
                }
            ],
        },
    ),
    503: (
        "The event store cannot be reached; retry after the Retry-After seconds",
        {"title": "Service unavailable", "detail": "eventstore unavailable: ServiceUnavailable"},
    ),
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries documenting the given error statuses as problem+json."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = _EXAMPLES[status]
        body = {
            "type": PROBLEM_TYPE_BASE + str(example["title"]).lower().replace(" ", "-"),
            "status": status,
            "detail": "",
            **example,
        }
        entry: dict[str, Any] = {
            "model": Problem,
            "description": description,
            "content": {PROBLEM_JSON: {"example": body}},
        }
        if status == 503:
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
        responses[status] = entry
    return responses


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
