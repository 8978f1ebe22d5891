"""``order_views``: one document per order, everything a client shows about it.

Document shape (``_id`` = the order id as a string; money in integer minor units of
``currency``; datetimes UTC, stored at millisecond precision)::

    {
        "_id": str, "order_id": str, "customer_id": str, "currency": str,
        "status": "draft" | "placed" | "paid" | "shipped" | "cancelled",
        "items": [{"sku": str, "quantity": int, "unit_price": int, "line_total": int}],
        "total": int, "amount_paid": int, "outstanding": int, "refund_due": int,
        "shipping_address": {"line1", "line2", "city", "postal_code", "country"},
        "carrier": str | None, "tracking_number": str | None,
        "cancel_reason": str | None, "cancelled_from": status | None,
        "version": int,                  # stream revision of the last event applied
        "created_at": datetime, "updated_at": datetime,
        "placed_at": datetime | None, "paid_at": datetime | None,
        "shipped_at": datetime | None, "cancelled_at": datetime | None,
        "_position": int,                # global position of the last event applied
    }

``items`` keep the order in which SKUs were first added; ``total`` is the sum of the line
totals, ``outstanding`` is ``total - amount_paid`` (0 once cancelled) and ``refund_due`` what
was paid before a cancellation. Only ``OrderCreated`` inserts; the other events update the
order's existing document (a later event for an order never created matches nothing).
The indexes serve ``GET /customers/{id}/orders?status=`` newest first with keyset pagination
on ``(created_at, _id)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import (
    conditional_pipeline,
    conditional_update,
    handle,
    literal,
)
from shared.document_store import IndexSpec, WriteOp
from shared.orders_events import (
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    ShippingAddressChanged,
)
from shared.read_models import ORDER_VIEWS


def _touch(envelope: EventEnvelope) -> dict[str, Any]:
    """Fields every event sets on its order."""
    return {"version": envelope.revision, "updated_at": envelope.occurred_at}


def _update(
    envelope: EventEnvelope,
    order_id: UUID,
    update: Mapping[str, Mapping[str, Any]],
    *,
    upsert: bool = False,
) -> tuple[WriteOp, ...]:
    body = {**update, "$set": {**update.get("$set", {}), **_touch(envelope)}}
    return (conditional_update(str(order_id), envelope, body, upsert=upsert),)


def _recalculated(
    envelope: EventEnvelope, order_id: UUID, items: Mapping[str, Any]
) -> tuple[WriteOp, ...]:
    """A pipeline that replaces ``items`` and recomputes ``total`` and ``outstanding`` from it."""
    stages: list[dict[str, Any]] = [
        {"$set": {"items": items}},
        {"$set": {"total": {"$sum": "$items.line_total"}}},
        {
            "$set": {
                "outstanding": {"$subtract": ["$total", {"$ifNull": ["$amount_paid", 0]}]},
                **{field: literal(value) for field, value in _touch(envelope).items()},
            }
        },
    ]
    return (conditional_pipeline(str(order_id), envelope, stages, upsert=False),)


def on_created(event: OrderCreated, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    fields = {
        "order_id": str(event.order_id),
        "customer_id": event.customer_id,
        "currency": event.currency,
        "status": "draft",
        "items": [],
        "total": 0,
        "amount_paid": 0,
        "outstanding": 0,
        "refund_due": 0,
        "shipping_address": event.shipping_address.model_dump(),
        "carrier": None,
        "tracking_number": None,
        "cancel_reason": None,
        "cancelled_from": None,
        "created_at": envelope.occurred_at,
        "placed_at": None,
        "paid_at": None,
        "shipped_at": None,
        "cancelled_at": None,
    }
    return _update(envelope, event.order_id, {"$set": fields}, upsert=True)


def on_item_added(event: ItemAdded, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    """A SKU already on the order gets its quantity raised; a new SKU is appended."""
    sku = literal(event.sku)
    added = event.quantity * event.unit_price
    current = {"$ifNull": ["$items", []]}
    raised = {
        "$map": {
            "input": current,
            "as": "line",
            "in": {
                "$cond": [
                    {"$eq": ["$$line.sku", sku]},
                    {
                        "$mergeObjects": [
                            "$$line",
                            {
                                "quantity": {"$add": ["$$line.quantity", literal(event.quantity)]},
                                "line_total": {"$add": ["$$line.line_total", literal(added)]},
                            },
                        ]
                    },
                    "$$line",
                ]
            },
        }
    }
    new_line = {
        "sku": sku,
        "quantity": literal(event.quantity),
        "unit_price": literal(event.unit_price),
        "line_total": literal(added),
    }
    appended = {"$concatArrays": [current, [new_line]]}
    has_sku = {"$in": [sku, {"$ifNull": ["$items.sku", []]}]}
    return _recalculated(envelope, event.order_id, {"$cond": [has_sku, raised, appended]})


def on_item_removed(event: ItemRemoved, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    kept = {
        "$filter": {
            "input": {"$ifNull": ["$items", []]},
            "as": "line",
            "cond": {"$ne": ["$$line.sku", literal(event.sku)]},
        }
    }
    return _recalculated(envelope, event.order_id, kept)


def on_address_changed(
    event: ShippingAddressChanged, envelope: EventEnvelope
) -> tuple[WriteOp, ...]:
    return _update(
        envelope,
        event.order_id,
        {"$set": {"shipping_address": event.shipping_address.model_dump()}},
    )


def on_placed(event: OrderPlaced, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    """The event's snapshot of lines and total replaces what the item events built up.
    Nothing can be paid before an order is placed, so all of it is outstanding."""
    items = [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "line_total": line.quantity * line.unit_price,
        }
        for line in event.lines
    ]
    fields = {
        "status": "placed",
        "items": items,
        "total": event.total,
        "outstanding": event.total,
        "placed_at": envelope.occurred_at,
    }
    return _update(envelope, event.order_id, {"$set": fields})


def on_payment(event: PaymentReceived, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    return _update(
        envelope,
        event.order_id,
        {
            "$set": {"status": "paid", "paid_at": envelope.occurred_at},
            "$inc": {"amount_paid": event.amount, "outstanding": -event.amount},
        },
    )


def on_shipped(event: OrderShipped, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    fields = {
        "status": "shipped",
        "carrier": event.carrier,
        "tracking_number": event.tracking_number,
        "shipped_at": envelope.occurred_at,
    }
    return _update(envelope, event.order_id, {"$set": fields})


def on_cancelled(event: OrderCancelled, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    fields = {
        "status": "cancelled",
        "cancel_reason": event.reason,
        "cancelled_from": event.previous_status,
        "refund_due": event.refund_due,
        "outstanding": 0,
        "cancelled_at": envelope.occurred_at,
    }
    return _update(envelope, event.order_id, {"$set": fields})


class OrderViews(Projection):
    name = ORDER_VIEWS
    indexes = (
        IndexSpec(
            keys=(("customer_id", 1), ("created_at", -1), ("_id", -1)),
            name="customer_newest_first",
        ),
        IndexSpec(
            keys=(("customer_id", 1), ("status", 1), ("created_at", -1), ("_id", -1)),
            name="customer_status_newest_first",
        ),
    )

    def __init__(self) -> None:
        super().__init__()
        handle(self, OrderCreated, on_created)
        handle(self, ItemAdded, on_item_added)
        handle(self, ItemRemoved, on_item_removed)
        handle(self, ShippingAddressChanged, on_address_changed)
        handle(self, OrderPlaced, on_placed)
        handle(self, PaymentReceived, on_payment)
        handle(self, OrderShipped, on_shipped)
        handle(self, OrderCancelled, on_cancelled)
