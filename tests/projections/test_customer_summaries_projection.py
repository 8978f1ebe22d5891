"""customer_summaries, pure: status events move one order between the customer's counters."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from projector.projection import EventEnvelope
from projector.projections.customer_summaries import CustomerSummaries
from shared.contract.order_events import (
    ItemAdded,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentReceived,
)
from shared.contract.read_model_sums import INT64_MAX, sum_of
from shared.contract.versioned_events import Event
from shared.ports.document_store import Document
from tests.projections.history import HOME, T0, History, fold
from tests.projections.maximal import BEYOND_INT64, maximal_payment
from write_side.domain.limits import MAX_PAYMENT

ORDER = uuid4()
BLANK_COUNTS = {"draft": 0, "placed": 0, "paid": 0, "shipped": 0, "cancelled": 0}


def summary(**fields: Any) -> Document:
    return {
        "_id": "c-1",
        "customer_id": "c-1",
        "orders_by_status": dict(BLANK_COUNTS),
        "order_count": 0,
        "open_orders": 0,
        "lifetime_paid": {},
        "last_order_at": None,
        "updated_at": T0,
        "_position": 1,
    } | fields


def after(event: Event, before: Document | None = None) -> Document:
    """The summary after ``event``, from ``before`` (None: no summary yet)."""
    envelope = History().record(event, at=T0)
    documents = {} if before is None else {"c-1": before}
    folded = fold(CustomerSummaries(), [envelope], documents)
    assert set(folded) == {"c-1"}
    assert folded["c-1"]["_position"] == envelope.position
    assert folded["c-1"]["updated_at"] == envelope.occurred_at
    return folded["c-1"]


def test_created_counts_a_new_open_draft_on_a_new_summary() -> None:
    event = OrderCreated(order_id=ORDER, customer_id="c-1", currency="EUR", shipping_address=HOME)
    assert after(event) == summary(
        orders_by_status=BLANK_COUNTS | {"draft": 1},
        order_count=1,
        open_orders=1,
        last_order_at=T0,
        _position=137,
    )


def test_created_keeps_the_newest_order_time() -> None:
    event = OrderCreated(order_id=ORDER, customer_id="c-1", currency="EUR", shipping_address=HOME)
    later = T0.replace(year=2030)
    assert after(event, summary(last_order_at=later))["last_order_at"] == later


def test_placed_moves_a_draft_to_placed() -> None:
    event = OrderPlaced(order_id=ORDER, customer_id="c-1", currency="EUR", lines=(), total=0)
    before = summary(orders_by_status=BLANK_COUNTS | {"draft": 2}, open_orders=2)
    result = after(event, before)
    assert result["orders_by_status"] == BLANK_COUNTS | {"draft": 1, "placed": 1}
    assert result["open_orders"] == 2
    assert before["orders_by_status"]["draft"] == 2, "the document given is not changed"


def test_payment_adds_to_the_lifetime_paid_of_its_currency() -> None:
    event = PaymentReceived(order_id=ORDER, customer_id="c-1", currency="JPY", amount=1200)
    before = summary(orders_by_status=BLANK_COUNTS | {"placed": 1}, lifetime_paid={"EUR": 5})
    result = after(event, before)
    assert result["orders_by_status"] == BLANK_COUNTS | {"paid": 1}
    assert result["lifetime_paid"] == {"EUR": 5, "JPY": 1200}


def test_shipping_closes_the_order() -> None:
    event = OrderShipped(order_id=ORDER, customer_id="c-1", carrier="UPS", tracking_number="1")
    before = summary(orders_by_status=BLANK_COUNTS | {"paid": 1}, open_orders=1)
    result = after(event, before)
    assert result["orders_by_status"] == BLANK_COUNTS | {"shipped": 1}
    assert result["open_orders"] == 0


@pytest.mark.parametrize("previous", ["draft", "placed", "paid"])
def test_cancelling_closes_the_order_from_its_previous_status(previous: OrderStatus) -> None:
    event = OrderCancelled(
        order_id=ORDER, customer_id="c-1", reason="r", previous_status=previous, refund_due=0
    )
    before = summary(orders_by_status=BLANK_COUNTS | {previous: 1}, open_orders=1)
    result = after(event, before)
    assert result["orders_by_status"] == BLANK_COUNTS | {"cancelled": 1}
    assert result["open_orders"] == 0


def test_item_events_do_not_concern_customers() -> None:
    event = ItemAdded(order_id=ORDER, sku="a", quantity=1, unit_price=1)
    assert fold(CustomerSummaries(), [History().record(event)]) == {}


# --- lifetime_paid beyond int64 (93 maximal payments of one customer) --------------------------


def maximal_payments(history: History, count: int) -> list[EventEnvelope]:
    return [history.record(maximal_payment(uuid4(), "c-1"), at=T0) for _ in range(count)]


def placed_orders(count: int) -> Document:
    return summary(orders_by_status=BLANK_COUNTS | {"placed": count}, open_orders=count)


def test_lifetime_paid_beyond_int64_is_stored_exactly() -> None:
    history = History()
    folded = fold(
        CustomerSummaries(),
        maximal_payments(history, BEYOND_INT64),
        {"c-1": placed_orders(BEYOND_INT64)},
    )
    paid = folded["c-1"]["lifetime_paid"]
    assert paid == {"EUR": str(BEYOND_INT64 * MAX_PAYMENT)}
    assert sum_of(paid["EUR"]) > INT64_MAX
    assert folded["c-1"]["orders_by_status"] == BLANK_COUNTS | {"paid": BEYOND_INT64}


def test_lifetime_paid_within_int64_stays_an_int() -> None:
    folded = fold(
        CustomerSummaries(),
        maximal_payments(History(), BEYOND_INT64 - 1),
        {"c-1": placed_orders(BEYOND_INT64)},
    )
    assert folded["c-1"]["lifetime_paid"] == {"EUR": (BEYOND_INT64 - 1) * MAX_PAYMENT}


def test_lifetime_paid_already_beyond_int64_keeps_adding_exactly() -> None:
    history = History()
    first = maximal_payments(history, BEYOND_INT64)
    beyond = fold(CustomerSummaries(), first, {"c-1": placed_orders(2 * BEYOND_INT64)})
    more = maximal_payments(history, BEYOND_INT64)
    folded = fold(CustomerSummaries(), more, beyond)
    assert folded["c-1"]["lifetime_paid"] == {"EUR": str(2 * BEYOND_INT64 * MAX_PAYMENT)}
