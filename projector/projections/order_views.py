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
was paid before a cancellation. Money here is one order's, at most ``MAX_ORDER_TOTAL`` (10^17,
one payment of exactly the outstanding amount), so it is stored as plain ints: only sums across
orders need the read-model rule of ``shared/contract/read_model_sums.py``.

Only ``OrderCreated`` creates the document; the other events change the order's existing
document (a later event for an order never created changes nothing).
The indexes serve ``GET /customers/{id}/orders?status=`` newest first with keyset pagination
on ``(created_at, _id)``.
"""

from __future__ import annotations

from typing import Any

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import handle
from shared.contract.order_events import (
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    ShippingAddressChanged,
)
from shared.contract.read_models import ORDER_VIEWS
from shared.ports.document_store import Document, IndexSpec


def _changed(document: Document, envelope: EventEnvelope, **fields: Any) -> Document:
    """``document`` with ``fields`` and what every event sets on its order."""
    return {
        **document,
        **fields,
        "version": envelope.revision,
        "updated_at": envelope.occurred_at,
    }


def _with_items(
    document: Document, envelope: EventEnvelope, items: list[dict[str, Any]]
) -> Document:
    """``items`` replaced, ``total`` and ``outstanding`` recomputed from them."""
    total = sum(line["line_total"] for line in items)
    outstanding = total - (document.get("amount_paid") or 0)
    return _changed(document, envelope, items=items, total=total, outstanding=outstanding)


def on_created(event: OrderCreated, document: Document | None, envelope: EventEnvelope) -> Document:
    order_id = str(event.order_id)
    return _changed(
        {"_id": order_id, **(document or {})},
        envelope,
        order_id=order_id,
        customer_id=event.customer_id,
        currency=event.currency,
        status="draft",
        items=[],
        total=0,
        amount_paid=0,
        outstanding=0,
        refund_due=0,
        shipping_address=event.shipping_address.model_dump(),
        carrier=None,
        tracking_number=None,
        cancel_reason=None,
        cancelled_from=None,
        created_at=envelope.occurred_at,
        placed_at=None,
        paid_at=None,
        shipped_at=None,
        cancelled_at=None,
    )


def on_item_added(
    event: ItemAdded, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    """A SKU already on the order gets its quantity raised; a new SKU is appended."""
    if document is None:
        return None
    value = event.quantity * event.unit_price
    items: list[dict[str, Any]] = []
    found = False
    for line in document.get("items") or []:
        if line["sku"] == event.sku:
            found = True
            items.append(
                {
                    **line,
                    "quantity": line["quantity"] + event.quantity,
                    "line_total": line["line_total"] + value,
                }
            )
        else:
            items.append(line)
    if not found:
        items.append(
            {
                "sku": event.sku,
                "quantity": event.quantity,
                "unit_price": event.unit_price,
                "line_total": value,
            }
        )
    return _with_items(document, envelope, items)


def on_item_removed(
    event: ItemRemoved, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    if document is None:
        return None
    kept = [line for line in document.get("items") or [] if line["sku"] != event.sku]
    return _with_items(document, envelope, kept)


def on_address_changed(
    event: ShippingAddressChanged, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    if document is None:
        return None
    return _changed(document, envelope, shipping_address=event.shipping_address.model_dump())


def on_placed(
    event: OrderPlaced, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    """The event's snapshot of lines and total replaces what the item events built up.
    Nothing can be paid before an order is placed, so all of it is outstanding."""
    if document is None:
        return None
    items = [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "line_total": line.quantity * line.unit_price,
        }
        for line in event.lines
    ]
    return _changed(
        document,
        envelope,
        status="placed",
        items=items,
        total=event.total,
        outstanding=event.total,
        placed_at=envelope.occurred_at,
    )


def on_payment(
    event: PaymentReceived, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    if document is None:
        return None
    return _changed(
        document,
        envelope,
        status="paid",
        paid_at=envelope.occurred_at,
        amount_paid=document.get("amount_paid", 0) + event.amount,
        outstanding=document.get("outstanding", 0) - event.amount,
    )


def on_shipped(
    event: OrderShipped, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    if document is None:
        return None
    return _changed(
        document,
        envelope,
        status="shipped",
        carrier=event.carrier,
        tracking_number=event.tracking_number,
        shipped_at=envelope.occurred_at,
    )


def on_cancelled(
    event: OrderCancelled, document: Document | None, envelope: EventEnvelope
) -> Document | None:
    if document is None:
        return None
    return _changed(
        document,
        envelope,
        status="cancelled",
        cancel_reason=event.reason,
        cancelled_from=event.previous_status,
        refund_due=event.refund_due,
        outstanding=0,
        cancelled_at=envelope.occurred_at,
    )


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

    def document_id(self, envelope: EventEnvelope) -> str | None:
        order_id = getattr(envelope.event, "order_id", None)
        return None if order_id is None else str(order_id)
