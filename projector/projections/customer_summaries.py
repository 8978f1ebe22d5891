"""``customer_summaries``: per customer, their orders by status and what they paid.

Document shape (``_id`` = the customer id; money in integer minor units)::

    {
        "_id": str, "customer_id": str,
        "orders_by_status": {"draft": int, "placed": int, "paid": int,
                             "shipped": int, "cancelled": int},
        "order_count": int,              # orders ever created
        "open_orders": int,              # draft + placed + paid
        "lifetime_paid": {currency: int},  # payments received, per currency, gross of refunds
        "last_order_at": datetime | None,  # creation time of the customer's newest order
        "updated_at": datetime,
        "_position": int,
    }

Each status event moves one order from its previous status to the next; the events carry
``customer_id`` (and ``OrderCancelled`` its ``previous_status``), so no per-order state is
kept here. Amounts in different currencies are never added together: ``lifetime_paid`` is
keyed by currency code (escaped with ``field_key``, which leaves ISO codes unchanged).
Refunds are not subtracted because ``OrderCancelled`` does not say in which currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import conditional_update, field_key, handle, insert_defaults
from shared.document_store import WriteOp
from shared.orders_events import (
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentReceived,
)
from shared.read_models import CUSTOMER_SUMMARIES

STATUSES: tuple[str, ...] = get_args(OrderStatus)
OPEN_STATUSES = frozenset({"draft", "placed", "paid"})
DEFAULTS: dict[str, Any] = {
    **{f"orders_by_status.{status}": 0 for status in STATUSES},
    "order_count": 0,
    "open_orders": 0,
    "lifetime_paid": {},
    "last_order_at": None,
}


def _moved(previous: str | None, status: str) -> dict[str, int]:
    """Counter changes for one order moving from ``previous`` (None: new) to ``status``."""
    if previous == status:
        return {}
    changes = {f"orders_by_status.{status}": 1}
    if previous is not None:
        changes[f"orders_by_status.{previous}"] = -1
    opened = status in OPEN_STATUSES
    was_open = previous in OPEN_STATUSES
    if opened != was_open:
        changes["open_orders"] = 1 if opened else -1
    return changes


def _summary(
    customer_id: str, envelope: EventEnvelope, update: Mapping[str, Mapping[str, Any]]
) -> tuple[WriteOp, ...]:
    body = {
        **update,
        "$set": {
            **update.get("$set", {}),
            "customer_id": customer_id,
            "updated_at": envelope.occurred_at,
        },
    }
    body["$setOnInsert"] = insert_defaults(DEFAULTS, body)
    return (conditional_update(customer_id, envelope, body, upsert=True),)


def on_created(event: OrderCreated, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    return _summary(
        event.customer_id,
        envelope,
        {
            "$inc": {**_moved(None, "draft"), "order_count": 1},
            "$max": {"last_order_at": envelope.occurred_at},
        },
    )


def on_placed(event: OrderPlaced, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    return _summary(event.customer_id, envelope, {"$inc": _moved("draft", "placed")})


def on_payment(event: PaymentReceived, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    paid = {f"lifetime_paid.{field_key(event.currency)}": event.amount}
    return _summary(event.customer_id, envelope, {"$inc": {**_moved("placed", "paid"), **paid}})


def on_shipped(event: OrderShipped, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    return _summary(event.customer_id, envelope, {"$inc": _moved("paid", "shipped")})


def on_cancelled(event: OrderCancelled, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    changes = _moved(event.previous_status, "cancelled")
    return _summary(event.customer_id, envelope, {"$inc": changes})


class CustomerSummaries(Projection):
    name = CUSTOMER_SUMMARIES

    def __init__(self) -> None:
        super().__init__()
        handle(self, OrderCreated, on_created)
        handle(self, OrderPlaced, on_placed)
        handle(self, PaymentReceived, on_payment)
        handle(self, OrderShipped, on_shipped)
        handle(self, OrderCancelled, on_cancelled)
