"""The operations endpoints' problem types, and ``CATALOGUE``: every problem type of the API.

The admin, projection and health routes answer the first ones; the server in front of the app
(``orders_api.server``) answers the load refusals, some of them before the request reaches the
app at all. ``CATALOGUE`` joins these with the shared entries and each side's, the one lookup of
problem types by name or type URI (the OpenAPI document is checked against it).
"""

from __future__ import annotations

from types import MappingProxyType

from read_side.http_problems import READ_PROBLEMS
from shared.web.problem_catalogue import (
    RETRY_AFTER,
    SHARED_PROBLEMS,
    ProblemCatalogue,
    ProblemType,
)
from write_side.http.problems import WRITE_PROBLEMS

UNAUTHORIZED = ProblemType(
    "unauthorized",
    401,
    "Unauthorized",
    "No bearer token, or not ADMIN_TOKEN (the attempt is logged, never the token)",
    {"detail": "admin endpoints need Authorization: Bearer <ADMIN_TOKEN>"},
    headers=MappingProxyType(
        {
            "WWW-Authenticate": {
                "description": 'Bearer realm="orders-admin"',
                "schema": {"type": "string"},
            }
        }
    ),
)
UNKNOWN_PROJECTION = ProblemType(
    "unknown-projection",
    404,
    "Unknown projection",
    "No projection of that name (``known`` lists them)",
    {
        "detail": "unknown projection 'orders'; known projections: order_views, "
        "customer_summaries, daily_sales",
        "known": ["order_views", "customer_summaries", "daily_sales"],
    },
)
REBUILD_ALREADY_RUNNING = ProblemType(
    "rebuild-already-running",
    409,
    "Rebuild already running",
    "A rebuild of this projection is already running (here or in another process); "
    "``status_url`` (also Location) follows it",
    {
        "detail": "a rebuild of 'order_views' is already running (started by this API process)",
        "status_url": "/admin/projections/order_views/rebuild",
    },
    headers=MappingProxyType(
        {
            "Location": {
                "description": "the running rebuild's status URL",
                "schema": {"type": "string"},
            }
        }
    ),
)
NOTHING_TO_PARK = ProblemType(
    "nothing-to-park",
    409,
    "Nothing to park",
    "No version of the projection is failed: there is no event to park",
    {"detail": "projection 'order_views' has no failed version"},
)
NOT_READY = ProblemType(
    "not-ready",
    503,
    "Not ready",
    "A store cannot be reached; ``checks`` says which",
    {
        "detail": "unreachable: mongodb",
        "checks": {"eventstore": "ok", "mongodb": "unavailable: no answer within 2s"},
    },
    headers=RETRY_AFTER,
)

# Refusals of the server in front of the app (orders_api.server), for every operation.
TOO_MANY_REQUESTS_IN_PROGRESS = ProblemType(
    "too-many-requests-in-progress",
    503,
    "Too many requests in progress",
    "API_LIMIT_CONCURRENCY requests are in progress already; retry after Retry-After seconds",
    {"detail": "the server is answering as many requests as it takes at once; retry later"},
    headers=RETRY_AFTER,
)
TOO_MANY_CONNECTIONS = ProblemType(
    "too-many-connections",
    503,
    "Too many connections",
    "API_MAX_CONNECTIONS connections are open already: answered before the request is read, "
    "and the connection closed; retry after Retry-After seconds",
    {"detail": "the server has as many connections open as it accepts; retry later"},
    headers=RETRY_AFTER,
)
REQUEST_BODY_TIMEOUT = ProblemType(
    "request-body-timeout",
    408,
    "Request body too slow",
    "The request body did not arrive within API_BODY_TIMEOUT_S of its head (the connection "
    "is closed)",
    {"detail": "the request body did not arrive in time"},
)

OPS_PROBLEMS = (
    UNAUTHORIZED,
    UNKNOWN_PROJECTION,
    REBUILD_ALREADY_RUNNING,
    NOTHING_TO_PARK,
    NOT_READY,
    TOO_MANY_REQUESTS_IN_PROGRESS,
    TOO_MANY_CONNECTIONS,
    REQUEST_BODY_TIMEOUT,
)

CATALOGUE = ProblemCatalogue(SHARED_PROBLEMS, WRITE_PROBLEMS, READ_PROBLEMS, OPS_PROBLEMS)
