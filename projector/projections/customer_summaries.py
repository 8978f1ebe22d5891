"""``customer_summaries``: per customer, their orders by status and what they paid.

Document shape (``_id`` = the customer id; money in integer minor units)::

    {
        "_id": str, "customer_id": str,
        "orders_by_status": {"draft": int, "placed": int, "paid": int,
                             "shipped": int, "cancelled": int},
        "order_count": int,              # orders ever created
        "open_orders": int,              # draft + placed + paid
        "lifetime_paid": {currency: sum},  # payments received, per currency, gross of refunds
        "last_order_at": datetime | None,  # creation time of the customer's newest order
        "updated_at": datetime,
        "_position": int,
    }

Each status event moves one order from its previous status to the next; the events carry
``customer_id`` (and ``OrderCancelled`` its ``previous_status``), so no per-order state is
kept here. Amounts in different currencies are never added together: ``lifetime_paid`` is
keyed by currency code (escaped with ``field_key``, which leaves ISO codes unchanged).
Refunds are not subtracted because ``OrderCancelled`` does not say in which currency.

A ``sum`` is added with ``operations.added`` and stored by the read-model rule
(``shared/contract/read_model_sums.py``): an int while it fits int64, its exact decimal string
beyond. A payment may be 10^17, so 93 maximal payments of one customer pass 2^63-1; as ints
that summary could not be stored and the projection would stall for everyone. The status
counts go through ``added`` too; they grow by one per event and stay ints.
"""

from __future__ import annotations

from typing import Any, get_args

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import added, field_key, handle
from shared.contract.order_events import (
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentReceived,
)
from shared.contract.read_models import CUSTOMER_SUMMARIES
from shared.ports.document_store import Document

STATUSES: tuple[str, ...] = get_args(OrderStatus)
OPEN_STATUSES = frozenset({"draft", "placed", "paid"})


def _blank(customer_id: str) -> Document:
    return {
        "_id": customer_id,
        "orders_by_status": dict.fromkeys(STATUSES, 0),
        "order_count": 0,
        "open_orders": 0,
        "lifetime_paid": {},
        "last_order_at": None,
    }


def _moved(
    customer_id: str,
    document: Document | None,
    envelope: EventEnvelope,
    previous: str | None,
    status: str,
    **fields: Any,
) -> Document:
    """The summary after one order moved from ``previous`` (None: new) to ``status``, with
    ``fields`` changed too."""
    summary = document if document is not None else _blank(customer_id)
    by_status = summary.get("orders_by_status", {})
    open_orders = summary.get("open_orders", 0)
    if previous != status:
        by_status = added(by_status, status, 1)
        if previous is not None:
            by_status = added(by_status, previous, -1)
        opened = status in OPEN_STATUSES
        if opened != (previous in OPEN_STATUSES):
            open_orders += 1 if opened else -1
    return {
        **summary,
        **fields,
        "orders_by_status": by_status,
        "open_orders": open_orders,
        "customer_id": customer_id,
        "updated_at": envelope.occurred_at,
    }


def on_created(event: OrderCreated, document: Document | None, envelope: EventEnvelope) -> Document:
    last = document.get("last_order_at") if document is not None else None
    return _moved(
        event.customer_id,
        document,
        envelope,
        None,
        "draft",
        order_count=(document or {}).get("order_count", 0) + 1,
        last_order_at=envelope.occurred_at if last is None else max(last, envelope.occurred_at),
    )


def on_placed(event: OrderPlaced, document: Document | None, envelope: EventEnvelope) -> Document:
    return _moved(event.customer_id, document, envelope, "draft", "placed")


def on_payment(
    event: PaymentReceived, document: Document | None, envelope: EventEnvelope
) -> Document:
    paid = (document or {}).get("lifetime_paid", {})
    return _moved(
        event.customer_id,
        document,
        envelope,
        "placed",
        "paid",
        lifetime_paid=added(paid, field_key(event.currency), event.amount),
    )


def on_shipped(event: OrderShipped, document: Document | None, envelope: EventEnvelope) -> Document:
    return _moved(event.customer_id, document, envelope, "paid", "shipped")


def on_cancelled(
    event: OrderCancelled, document: Document | None, envelope: EventEnvelope
) -> Document:
    return _moved(event.customer_id, document, envelope, event.previous_status, "cancelled")


class CustomerSummaries(Projection):
    name = CUSTOMER_SUMMARIES

    def __init__(self) -> None:
        super().__init__()
        handle(self, OrderCreated, on_created)
        handle(self, OrderPlaced, on_placed)
        handle(self, PaymentReceived, on_payment)
        handle(self, OrderShipped, on_shipped)
        handle(self, OrderCancelled, on_cancelled)

    def document_id(self, envelope: EventEnvelope) -> str | None:
        customer_id = getattr(envelope.event, "customer_id", None)
        return None if customer_id is None else str(customer_id)
