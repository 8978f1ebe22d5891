"""customer_summaries, pure: status events move one order between the customer's counters."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from projector.projections.customer_summaries import CustomerSummaries
from shared.document_store import UpdateOne
from shared.events import Event
from shared.orders_events import (
    ItemAdded,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentReceived,
)
from tests.projections.history import HOME, History

ORDER = uuid4()


def op_for(event: Event) -> tuple[UpdateOne, int]:
    envelope = History().record(event)
    [op] = CustomerSummaries().apply(envelope)
    assert isinstance(op, UpdateOne)
    assert op.upsert is True
    assert op.filter == {"_id": "c-1", "_position": {"$lt": envelope.position}}
    assert isinstance(op.update, dict)
    assert op.update["$set"] == {
        "customer_id": "c-1",
        "updated_at": envelope.occurred_at,
        "_position": envelope.position,
    }
    return op, envelope.position


def update_of(event: Event) -> dict[str, Any]:
    op, _ = op_for(event)
    assert isinstance(op.update, dict)
    return dict(op.update)


def test_created_counts_a_new_open_draft_and_sets_the_other_fields_on_insert() -> None:
    event = OrderCreated(order_id=ORDER, customer_id="c-1", currency="EUR", shipping_address=HOME)
    update = update_of(event)
    assert update["$inc"] == {"orders_by_status.draft": 1, "order_count": 1, "open_orders": 1}
    assert set(update["$max"]) == {"last_order_at"}
    assert update["$setOnInsert"] == {
        "orders_by_status.placed": 0,
        "orders_by_status.paid": 0,
        "orders_by_status.shipped": 0,
        "orders_by_status.cancelled": 0,
        "lifetime_paid": {},
    }


def test_placed_moves_a_draft_to_placed() -> None:
    event = OrderPlaced(order_id=ORDER, customer_id="c-1", currency="EUR", lines=(), total=0)
    assert update_of(event)["$inc"] == {
        "orders_by_status.placed": 1,
        "orders_by_status.draft": -1,
    }


def test_payment_adds_to_the_lifetime_paid_of_its_currency() -> None:
    event = PaymentReceived(order_id=ORDER, customer_id="c-1", currency="JPY", amount=1200)
    update = update_of(event)
    assert update["$inc"] == {
        "orders_by_status.paid": 1,
        "orders_by_status.placed": -1,
        "lifetime_paid.JPY": 1200,
    }
    assert "lifetime_paid" not in update["$setOnInsert"]
    assert update["$setOnInsert"]["order_count"] == 0


def test_shipping_closes_the_order() -> None:
    event = OrderShipped(order_id=ORDER, customer_id="c-1", carrier="UPS", tracking_number="1")
    assert update_of(event)["$inc"] == {
        "orders_by_status.shipped": 1,
        "orders_by_status.paid": -1,
        "open_orders": -1,
    }


@pytest.mark.parametrize("previous", ["draft", "placed", "paid"])
def test_cancelling_closes_the_order_from_its_previous_status(previous: OrderStatus) -> None:
    event = OrderCancelled(
        order_id=ORDER, customer_id="c-1", reason="r", previous_status=previous, refund_due=0
    )
    assert update_of(event)["$inc"] == {
        "orders_by_status.cancelled": 1,
        f"orders_by_status.{previous}": -1,
        "open_orders": -1,
    }


def test_item_events_do_not_concern_customers() -> None:
    event = ItemAdded(order_id=ORDER, sku="a", quantity=1, unit_price=1)
    assert CustomerSummaries().apply(History().record(event)) == ()
