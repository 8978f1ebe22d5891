"""OpenAPI examples of the operations endpoints (health, projections, metrics, admin), so
``/docs`` shows each answer and each error shape."""

from __future__ import annotations

from typing import Any

from orders_api import problems
from shared.web.problem_catalogue import STORE_UNAVAILABLE, VALIDATION_FAILED
from shared.web.problem_docs import Responses, problem_responses


def ok(example: Any, status: int = 200, **extra: Any) -> Responses:
    return {status: {"content": {"application/json": {"example": example}}, **extra}}


# The problems of the operations routes, from the catalogue (``orders_api.problems``).
UNAUTHORIZED = problem_responses(problems.UNAUTHORIZED)
UNKNOWN_PROJECTION = problem_responses(problems.UNKNOWN_PROJECTION)
MONGO_DOWN = problem_responses(STORE_UNAVAILABLE)
INVALID = problem_responses(VALIDATION_FAILED)
NOT_READY = problem_responses(problems.NOT_READY)
REBUILD_RUNNING = problem_responses(problems.REBUILD_ALREADY_RUNNING)
NOTHING_TO_PARK = problem_responses(problems.NOTHING_TO_PARK)

_FAILED_EVENT: dict[str, Any] = {
    "event_id": "5f0c7e0a-2f4e-4a57-9d0b-4c8f3e6a1b2d",
    "stream": "order-0b6f1c1e-5a4d-4c3b-9e2f-1a2b3c4d5e6f",
    "revision": 4,
    "position": 1838211,
    "event_type": "PaymentReceived",
    "error": "KeyError: 'amount'",
    "attempts": 3,
    "failed_at": "2025-03-01T09:21:00.120000Z",
}
PROJECTION_STATUS_EXAMPLE: dict[str, Any] = {
    "name": "order_views",
    "version": 2,
    "collection": "order_views_v2",
    "state": "live",
    "checkpoint_position": 1838211,
    "head_position": 1838211,
    "lag_events": 0,
    "lag_events_exact": True,
    "lag_seconds": 0.0,
    "last_event_at": "2025-03-01T09:20:41.007000Z",
    "updated_at": "2025-03-01T09:20:41.120000Z",
    "error": None,
    "reason": None,
    "rebuilding": None,
    "owner": "projector-7d9f:1",
    "lease_expires_at": "2025-03-01T09:20:49.500000Z",
}
FAILED_STATUS_EXAMPLE: dict[str, Any] = {
    **PROJECTION_STATUS_EXAMPLE,
    "name": "daily_sales",
    "version": 1,
    "collection": "daily_sales_v1",
    "state": "failed",
    "checkpoint_position": 1838011,
    "lag_events": 12,
    "lag_seconds": 31.5,
    "error": _FAILED_EVENT,
}
REBUILDING_STATUS_EXAMPLE: dict[str, Any] = {
    **PROJECTION_STATUS_EXAMPLE,
    "rebuilding": {
        "version": 3,
        "checkpoint_position": 912000,
        "progress": 0.49,
        "state": "rebuilding",
        "running": True,
        "error": None,
    },
}
LAG_NOTE = (
    "lag_events is approximate: counted exactly up to a bound (lag_events_exact: true), "
    "extrapolated from how densely the projection's events sit in the log beyond it"
)
PROJECTIONS_EXAMPLE: dict[str, Any] = {
    "projections": [PROJECTION_STATUS_EXAMPLE, FAILED_STATUS_EXAMPLE],
    "instances": [
        {
            "instance_id": "projector-7d9f:1",
            "started_at": "2025-03-01T08:02:11.000000Z",
            "heartbeat_at": "2025-03-01T09:20:39.500000Z",
            "expires_at": "2025-03-01T09:20:49.500000Z",
            "leases": ["daily_sales", "order_views"],
        }
    ],
    "note": LAG_NOTE,
}
READY_EXAMPLE: dict[str, Any] = {
    "status": "ready",
    "checks": {"eventstore": "ok", "mongodb": "ok"},
    "projections": [
        {
            "name": "order_views",
            "version": 2,
            "state": "live",
            "lag_events": 0,
            "lag_events_exact": True,
            "lag_seconds": 0.0,
            "error": None,
        }
    ],
    "projections_age_s": 1.2,
    "warnings": [],
}
METRICS_EXAMPLE = """\
# HELP orders_api_commands_total Commands answered, by command (route name) and outcome
# TYPE orders_api_commands_total counter
orders_api_commands_total{command="create_order",outcome="success"} 42.0
orders_api_commands_total{command="place_order",outcome="conflict"} 1.0
# HELP orders_api_projection_lag_events Events of its types not yet applied; approximate ...
# TYPE orders_api_projection_lag_events gauge
orders_api_projection_lag_events{projection="order_views"} 0.0
"""
REBUILD_JOB_EXAMPLE: dict[str, Any] = {
    "projection": "order_views",
    "state": "running",
    "started_at": "2025-03-01T09:30:00.000000Z",
    "finished_at": None,
    "version": None,
    "previous_version": None,
    "events": None,
    "error": None,
}
REBUILD_ACCEPTED_EXAMPLE: dict[str, Any] = {
    "projection": "order_views",
    "status_url": "/admin/projections/order_views/rebuild",
    "job": REBUILD_JOB_EXAMPLE,
}
REBUILD_REPORT_EXAMPLE: dict[str, Any] = {
    "projection": "order_views",
    "job": REBUILD_JOB_EXAMPLE,
    "status": REBUILDING_STATUS_EXAMPLE,
}
DEAD_LETTER_EXAMPLE: dict[str, Any] = {
    "projection": "daily_sales",
    "version": 1,
    **{key: value for key, value in _FAILED_EVENT.items() if key != "attempts"},
    "parked_at": "2025-03-01T09:40:00.000000Z",
    "data": '{"order_id": "0b6f1c1e-5a4d-4c3b-9e2f-1a2b3c4d5e6f"}',
    "metadata": '{"schema_version": 1}',
}
DEAD_LETTERS_EXAMPLE: dict[str, Any] = {"dead_letters": [DEAD_LETTER_EXAMPLE]}
PARKED_EXAMPLE: dict[str, Any] = {"parked": [DEAD_LETTER_EXAMPLE]}
