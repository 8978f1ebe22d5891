"""Read-model documents shaped like the projections' output (see ``projector/projections``),
built by hand so the read side's tests need no projector."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from tests.samples import ADDRESS


def order_document(
    *,
    customer_id: str,
    created_at: datetime,
    status: str = "draft",
    order_id: str | None = None,
    position: int = 1,
) -> dict[str, Any]:
    """An ``order_views`` document; placed and later orders have one line of 2 x 1250."""
    oid = order_id or str(uuid.uuid4())
    placed = status != "draft"
    paid = status in ("paid", "shipped")
    total = 2500 if placed else 0
    return {
        "_id": oid,
        "order_id": oid,
        "customer_id": customer_id,
        "currency": "EUR",
        "status": status,
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 1250, "line_total": 2500}]
        if placed
        else [],
        "total": total,
        "amount_paid": total if paid else 0,
        "outstanding": 0 if paid or status == "cancelled" else total,
        "refund_due": 0,
        "shipping_address": ADDRESS,
        "carrier": "DHL" if status == "shipped" else None,
        "tracking_number": "TRK-1" if status == "shipped" else None,
        "cancel_reason": "changed my mind" if status == "cancelled" else None,
        "cancelled_from": "placed" if status == "cancelled" else None,
        "version": 3,
        "created_at": created_at,
        "updated_at": created_at,
        "placed_at": created_at if placed else None,
        "paid_at": created_at if paid else None,
        "shipped_at": created_at if status == "shipped" else None,
        "cancelled_at": created_at if status == "cancelled" else None,
        "_position": position,
    }


def summary_document(customer_id: str, **fields: Any) -> dict[str, Any]:
    """A ``customer_summaries`` document."""
    return {
        "_id": customer_id,
        "customer_id": customer_id,
        "orders_by_status": {"draft": 1, "placed": 1, "paid": 2, "shipped": 3, "cancelled": 1},
        "order_count": 8,
        "open_orders": 4,
        "lifetime_paid": {"EUR": 12500, "USD": 999},
        "last_order_at": datetime(2025, 3, 1, 9, 15, tzinfo=UTC),
        "updated_at": datetime(2025, 3, 2, tzinfo=UTC),
        "_position": 42,
        **fields,
    }


def day_document(day: str, **fields: Any) -> dict[str, Any]:
    """A ``daily_sales`` document: two orders placed, one paid, two SKUs in EUR, one in USD."""
    return {
        "_id": day,
        "day": day,
        "orders_placed": 2,
        "placed_value": {"EUR": 4000, "USD": 700},
        "payments_received": 1,
        "revenue": {"EUR": 2500},
        "skus": {
            "EUR:MUG": {"sku": "MUG", "currency": "EUR", "units": 2, "revenue": 2500},
            "EUR:CUP%2E2": {"sku": "CUP.2", "currency": "EUR", "units": 1, "revenue": 1500},
            "USD:MUG": {"sku": "MUG", "currency": "USD", "units": 1, "revenue": 700},
        },
        "updated_at": datetime(2025, 3, 2, tzinfo=UTC),
        "_position": 42,
        **fields,
    }
