"""OpenAPI descriptions of the query API: example answers and every error shape, for ``/docs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from read_side.http_problems import (
    MALFORMED_CONSISTENCY_TOKEN,
    MALFORMED_CURSOR,
    TOO_MANY_WAITING_READS,
)
from shared.web.problem_catalogue import (
    ORDER_NOT_FOUND,
    STORE_UNAVAILABLE,
    VALIDATION_FAILED,
    ProblemType,
)
from shared.web.problem_docs import problem_responses

READ_HEADERS = {
    "X-Read-Model-Position": {
        "description": "commit position the read model had applied when it answered",
        "schema": {"type": "integer"},
    },
    "X-Read-Model-Stale": {
        "description": "sent when X-Consistency-Token was: `true` if the answer may miss the "
        "token's write (neither the read model nor, for one order, its own document had reached "
        "the token within wait_ms), else `false`",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
}

ORDER_EXAMPLE: dict[str, Any] = {
    "order_id": "0b6f1c1e-5a4d-4c3b-9e2f-1a2b3c4d5e6f",
    "customer_id": "cust-42",
    "currency": "EUR",
    "status": "paid",
    "items": [{"sku": "SKU-RED-MUG", "quantity": 2, "unit_price": 1250, "line_total": 2500}],
    "total": 2500,
    "amount_paid": 2500,
    "outstanding": 0,
    "refund_due": 0,
    "shipping_address": {
        "line1": "1 Main Street",
        "line2": "",
        "city": "Dublin",
        "postal_code": "D01 F5P2",
        "country": "IE",
    },
    "carrier": None,
    "tracking_number": None,
    "cancel_reason": None,
    "cancelled_from": None,
    "version": 3,
    "created_at": "2025-03-01T09:15:00.123000Z",
    "updated_at": "2025-03-01T09:20:41.007000Z",
    "placed_at": "2025-03-01T09:18:02.500000Z",
    "paid_at": "2025-03-01T09:20:41.007000Z",
    "shipped_at": None,
    "cancelled_at": None,
}
PAGE_EXAMPLE: dict[str, Any] = {
    "items": [ORDER_EXAMPLE],
    "next_cursor": "WzEsIjIwMjUtMDMtMDFUMDk6MTU6MDAuMTIzKzAwOjAwIiwiMGI2ZjFjMWUiXQ",
}
SUMMARY_EXAMPLE: dict[str, Any] = {
    "customer_id": "cust-42",
    "orders_by_status": {"draft": 1, "placed": 0, "paid": 1, "shipped": 3, "cancelled": 1},
    "order_count": 6,
    "open_orders": 2,
    "lifetime_paid": {"EUR": 18250},
    "last_order_at": "2025-03-01T09:15:00.123000Z",
}
_DAY: dict[str, Any] = {
    "orders_placed": 2,
    "placed_value": {"EUR": 4000},
    "payments_received": 1,
    "revenue": {"EUR": 2500},
    "skus": [{"sku": "SKU-RED-MUG", "currency": "EUR", "units": 3, "revenue": 3750}],
    "other_skus": {},
    "skus_capped": False,
}
DAILY_SALES_EXAMPLE: dict[str, Any] = {
    "from_day": "2025-03-01",
    "to_day": "2025-03-02",
    "days": [
        {"day": "2025-03-01", **_DAY},
        {
            "day": "2025-03-02",
            "orders_placed": 0,
            "placed_value": {},
            "payments_received": 0,
            "revenue": {},
            "skus": [],
            "other_skus": {},
            "skus_capped": False,
        },
    ],
    "totals": _DAY,
}

# Every query: its token and parameters are checked, and it reads MongoDB, possibly waiting.
_ANY_QUERY = (
    MALFORMED_CONSISTENCY_TOKEN,
    VALIDATION_FAILED,
    STORE_UNAVAILABLE,
    TOO_MANY_WAITING_READS,
)
ORDER_PROBLEMS = (*_ANY_QUERY, ORDER_NOT_FOUND)
PAGE_PROBLEMS = (*_ANY_QUERY, MALFORMED_CURSOR)
QUERY_PROBLEMS = _ANY_QUERY

# The refusal of a read that would have to wait while READ_WAIT_MAX_WAITERS reads wait already.
WAIT_REFUSED_STATUS = TOO_MANY_WAITING_READS.status
WAIT_REFUSED_TYPE = TOO_MANY_WAITING_READS.name


def read_responses(
    example: dict[str, Any], problems: Sequence[ProblemType]
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a query route: its 200 example and headers, and its problems."""
    return {
        200: {"headers": READ_HEADERS, "content": {"application/json": {"example": example}}},
        **problem_responses(*problems),
    }
