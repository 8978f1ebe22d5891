"""order_views, pure: each event folds into its order's document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

from projector.projections.order_views import OrderViews
from shared.contract.order_events import (
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    ShippingAddressChanged,
)
from shared.contract.versioned_events import Event
from shared.ports.document_store import Document
from tests.projections.history import HOME, T0, WORK, History, fold

ORDER = uuid4()
CREATED = OrderCreated(order_id=ORDER, customer_id="c-1", currency="EUR", shipping_address=HOME)


class Order:
    """One order's history and its document, event by event."""

    def __init__(self) -> None:
        self.history = History()
        self.document: Document | None = None

    def apply(self, event: Event, **at: Any) -> Document:
        envelope = self.history.record(event, **at)
        documents = {} if self.document is None else {str(ORDER): self.document}
        before = dict(self.document or {})
        folded = fold(OrderViews(), [envelope], documents)
        assert before == (self.document or {}), "the document given is not changed"
        assert set(folded) == {str(ORDER)}
        self.document = folded[str(ORDER)]
        assert self.document["_position"] == envelope.position
        assert self.document["version"] == envelope.revision
        assert self.document["updated_at"] == envelope.occurred_at
        return self.document

    def changes(self, event: Event, **at: Any) -> dict[str, Any]:
        """The fields ``event`` changes, except version, updated_at and _position."""
        before = dict(self.document or {})
        after = self.apply(event, **at)
        touched = {"version", "updated_at", "_position"}
        return {k: v for k, v in after.items() if before.get(k) != v and k not in touched}


def created() -> Order:
    order = Order()
    order.apply(CREATED, at=T0)
    return order


def test_created_makes_the_whole_document_shape() -> None:
    assert created().document == {
        "_id": str(ORDER),
        "order_id": str(ORDER),
        "customer_id": "c-1",
        "currency": "EUR",
        "status": "draft",
        "items": [],
        "total": 0,
        "amount_paid": 0,
        "outstanding": 0,
        "refund_due": 0,
        "shipping_address": {
            "line1": "1 Main St",
            "line2": "",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        },
        "carrier": None,
        "tracking_number": None,
        "cancel_reason": None,
        "cancelled_from": None,
        "created_at": T0,
        "placed_at": None,
        "paid_at": None,
        "shipped_at": None,
        "cancelled_at": None,
        "version": 0,
        "updated_at": T0,
        "_position": 137,
    }


def test_later_events_change_only_an_existing_document() -> None:
    history = History()
    events = [
        ItemAdded(order_id=ORDER, sku="a", quantity=1, unit_price=5),
        ItemRemoved(order_id=ORDER, sku="a"),
        ShippingAddressChanged(order_id=ORDER, shipping_address=WORK),
        OrderPlaced(order_id=ORDER, customer_id="c-1", currency="EUR", lines=(), total=0),
        PaymentReceived(order_id=ORDER, customer_id="c-1", currency="EUR", amount=0),
        OrderShipped(order_id=ORDER, customer_id="c-1", carrier="DHL", tracking_number="T"),
    ]
    assert fold(OrderViews(), [history.record(event) for event in events]) == {}


def test_events_at_or_below_the_document_position_are_skipped() -> None:
    order = created()
    assert order.document is not None
    again = order.history.envelopes[0]
    assert fold(OrderViews(), [again], {str(ORDER): order.document}) == {}


def test_items_are_merged_by_sku_and_totals_recomputed() -> None:
    order = created()
    order.apply(PaymentReceived(order_id=ORDER, customer_id="c-1", currency="EUR", amount=100))
    assert order.changes(ItemAdded(order_id=ORDER, sku="$price.x", quantity=3, unit_price=250)) == {
        "items": [{"sku": "$price.x", "quantity": 3, "unit_price": 250, "line_total": 750}],
        "total": 750,
        "outstanding": 650,
    }
    order.apply(ItemAdded(order_id=ORDER, sku="b", quantity=1, unit_price=10))
    assert order.changes(ItemAdded(order_id=ORDER, sku="$price.x", quantity=1, unit_price=250)) == {
        "items": [
            {"sku": "$price.x", "quantity": 4, "unit_price": 250, "line_total": 1000},
            {"sku": "b", "quantity": 1, "unit_price": 10, "line_total": 10},
        ],
        "total": 1010,
        "outstanding": 910,
    }
    assert order.changes(ItemRemoved(order_id=ORDER, sku="$price.x")) == {
        "items": [{"sku": "b", "quantity": 1, "unit_price": 10, "line_total": 10}],
        "total": 10,
        "outstanding": -90,
    }


def test_placed_takes_lines_and_total_from_the_snapshot() -> None:
    order = created()
    order.apply(ItemAdded(order_id=ORDER, sku="old", quantity=1, unit_price=1))
    lines = (
        OrderLine(sku="a", quantity=2, unit_price=300),
        OrderLine(sku="b", quantity=1, unit_price=5),
    )
    placed = OrderPlaced(order_id=ORDER, customer_id="c-1", currency="EUR", lines=lines, total=605)
    assert order.changes(placed, at=T0 + timedelta(hours=1)) == {
        "status": "placed",
        "items": [
            {"sku": "a", "quantity": 2, "unit_price": 300, "line_total": 600},
            {"sku": "b", "quantity": 1, "unit_price": 5, "line_total": 5},
        ],
        "total": 605,
        "outstanding": 605,
        "placed_at": T0 + timedelta(hours=1),
    }


def test_address_payment_shipping_and_cancellation() -> None:
    order = created()
    assert order.changes(ShippingAddressChanged(order_id=ORDER, shipping_address=WORK)) == {
        "shipping_address": WORK.model_dump()
    }
    paid = PaymentReceived(order_id=ORDER, customer_id="c-1", currency="EUR", amount=605)
    assert order.changes(paid) == {
        "status": "paid",
        "paid_at": order.history.envelopes[-1].occurred_at,
        "amount_paid": 605,
        "outstanding": -605,
    }
    shipped = OrderShipped(order_id=ORDER, customer_id="c-1", carrier="DHL", tracking_number="JD1")
    assert order.changes(shipped) == {
        "status": "shipped",
        "carrier": "DHL",
        "tracking_number": "JD1",
        "shipped_at": order.history.envelopes[-1].occurred_at,
    }
    cancelled = OrderCancelled(
        order_id=ORDER,
        customer_id="c-1",
        reason="changed mind",
        previous_status="paid",
        refund_due=605,
    )
    assert order.changes(cancelled) == {
        "status": "cancelled",
        "cancel_reason": "changed mind",
        "cancelled_from": "paid",
        "refund_due": 605,
        "outstanding": 0,
        "cancelled_at": order.history.envelopes[-1].occurred_at,
    }


def test_indexes_serve_customer_orders_newest_first() -> None:
    keys = [index.keys for index in OrderViews.indexes]
    assert (("customer_id", 1), ("created_at", -1), ("_id", -1)) in keys
    assert (("customer_id", 1), ("status", 1), ("created_at", -1), ("_id", -1)) in keys
