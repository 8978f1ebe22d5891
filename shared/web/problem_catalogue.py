"""The catalogue of problem types: every (status, type, title) the HTTP API can answer with.

One ``ProblemType`` per kind of problem says its status, the last segment of its type URI, its
title, when it is answered (for the OpenAPI document) and an example. The runtime raises
``ProblemError(kind, detail)`` (``shared.web.problem_details``) and the OpenAPI document shows
``problem_responses(*kinds)`` (``shared.web.problem_docs``), so what ``/docs`` advertises and what
the API sends are read from the same entry and cannot drift apart.

The entries every part of the API shares (framework errors, an unknown order, a store that
cannot be reached) are defined here; each side defines its own beside its routes
(``write_side.http.problems``, ``read_side.http_problems``, ``orders_api.problems``), and the
composition root joins them all into one ``ProblemCatalogue`` (``orders_api.problems.CATALOGUE``),
the one lookup by name or type URI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

PROBLEM_TYPE_BASE = "https://orders.example/problems/"

# Documented response headers (OpenAPI header objects), by the problems that carry them.
RETRY_AFTER: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer"},
        }
    }
)


@dataclass(frozen=True, eq=False, slots=True)
class ProblemType:
    """One kind of problem: ``type`` is ``PROBLEM_TYPE_BASE + name``.

    ``description`` says when the API answers it and ``example`` holds the ``detail`` and any
    extension members of an example body (both for the OpenAPI document). ``headers`` are the
    response headers the problem always carries (OpenAPI header objects, e.g. ``RETRY_AFTER``).
    ``reaches_client`` is False only for a status recorded for metrics and logs after the client
    left, which nobody ever reads (so it is not documented).
    """

    name: str
    status: int
    title: str
    description: str
    example: Mapping[str, Any]
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    reaches_client: bool = True

    def __post_init__(self) -> None:
        if "detail" not in self.example:
            raise ValueError(f"problem {self.name}: its example needs a detail")

    @property
    def uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.name


class ProblemCatalogue:
    """Every problem type of the API, found by name or by type URI; names are unique."""

    def __init__(self, *kinds: Iterable[ProblemType]) -> None:
        self._by_name: dict[str, ProblemType] = {}
        for kind in (kind for group in kinds for kind in group):
            known = self._by_name.get(kind.name)
            if known is not None and known is not kind:
                raise ValueError(f"two problem types are named {kind.name!r}")
            self._by_name[kind.name] = kind

    def __iter__(self) -> Iterator[ProblemType]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, ProblemType) and self._by_name.get(kind.name) is kind

    def named(self, name: str) -> ProblemType:
        return self._by_name[name]

    def by_uri(self, uri: str) -> ProblemType | None:
        """The entry whose type URI is ``uri``; None for a type the catalogue does not hold."""
        if not uri.startswith(PROBLEM_TYPE_BASE):
            return None
        return self._by_name.get(uri.removeprefix(PROBLEM_TYPE_BASE))


# --- the problems every part of the API shares ------------------------------------------------

MALFORMED_JSON = ProblemType(
    "malformed-json",
    400,
    "Malformed JSON",
    "The request body is not valid JSON",
    {"detail": "the request body is not valid JSON: Expecting value"},
)
HTTP_ERROR = ProblemType(
    "http-error",
    400,
    "HTTP error",
    "The request body could not be read at all (e.g. it is not UTF-8)",
    {"detail": "There was an error parsing the body"},
)
VALIDATION_FAILED = ProblemType(
    "validation-failed",
    422,
    "Validation failed",
    "A parameter or the body failed validation; ``errors`` lists each field",
    {
        "detail": "body.quantity: Input should be a valid integer",
        "errors": [
            {
                "field": "body.quantity",
                "message": "Input should be a valid integer",
                "type": "int_type",
            }
        ],
    },
)
NOT_FOUND = ProblemType(
    "not-found",
    404,
    "Not found",
    "No such path (every /admin path is one when the API runs without ADMIN_TOKEN)",
    {"detail": "Not Found"},
)
METHOD_NOT_ALLOWED = ProblemType(
    "method-not-allowed",
    405,
    "Method not allowed",
    "The path exists, but not with this method",
    {"detail": "Method Not Allowed"},
)
CONTENT_TOO_LARGE = ProblemType(
    "content-too-large",
    413,
    "Content too large",
    "The request body is larger than MAX_BODY_BYTES (the connection is closed)",
    {"detail": "the request body is larger than 65536 bytes"},
)
INTERNAL_ERROR = ProblemType(
    "internal-error",
    500,
    "Internal error",
    "An unexpected error: logged with the request's correlation id (echoed in X-Correlation-ID); "
    "the body never carries a stack trace",
    {"detail": "an unexpected error occurred; it was logged"},
)
ORDER_NOT_FOUND = ProblemType(
    "order-not-found",
    404,
    "Order not found",
    "No such order (on a query, X-Read-Model-Stale: true says the read model may not have "
    "caught up with your X-Consistency-Token yet)",
    {"detail": "no order 0b6f1c1e-5a4d-4c3b-9e2f-1a2b3c4d5e6f"},
)
STORE_UNAVAILABLE = ProblemType(
    "store-unavailable",
    503,
    "Service unavailable",
    "A store (``store``: eventstore or mongodb) cannot be reached; retry after Retry-After seconds",
    {"detail": "eventstore unavailable; retry later", "store": "eventstore"},
    headers=RETRY_AFTER,
)

SHARED_PROBLEMS = (
    MALFORMED_JSON,
    HTTP_ERROR,
    VALIDATION_FAILED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CONTENT_TOO_LARGE,
    INTERNAL_ERROR,
    ORDER_NOT_FOUND,
    STORE_UNAVAILABLE,
)
