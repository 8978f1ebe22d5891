"""order_views, pure: each event becomes one conditional operation on its order's document."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

from projector.projections.order_views import OrderViews
from shared.document_store import UpdateOne
from shared.orders_events import (
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
from tests.projections.history import HOME, T0, WORK, History

ORDER = uuid4()


def only_update(ops: Any) -> UpdateOne:
    [op] = ops
    assert isinstance(op, UpdateOne)
    return op


def set_fields(ops: Any) -> dict[str, Any]:
    update = only_update(ops).update
    assert isinstance(update, dict)
    return dict(update["$set"])


def created(history: History) -> UpdateOne:
    event = OrderCreated(order_id=ORDER, customer_id="c-1", currency="EUR", shipping_address=HOME)
    return only_update(OrderViews().apply(history.record(event, at=T0)))


def test_created_inserts_the_whole_document_shape() -> None:
    op = created(History())
    assert op.upsert is True
    assert op.filter == {"_id": str(ORDER), "_position": {"$lt": 137}}
    assert op.update == {
        "$set": {
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
    }


def test_later_events_update_only_an_existing_document_behind_their_position() -> None:
    history = History()
    created(history)
    projection = OrderViews()
    events = [
        ItemAdded(order_id=ORDER, sku="a", quantity=1, unit_price=5),
        ItemRemoved(order_id=ORDER, sku="a"),
        ShippingAddressChanged(order_id=ORDER, shipping_address=WORK),
        OrderPlaced(order_id=ORDER, customer_id="c-1", currency="EUR", lines=(), total=0),
        PaymentReceived(order_id=ORDER, customer_id="c-1", currency="EUR", amount=0),
        OrderShipped(order_id=ORDER, customer_id="c-1", carrier="DHL", tracking_number="T"),
    ]
    for event in events:
        envelope = history.record(event)
        op = only_update(projection.apply(envelope))
        assert op.upsert is False
        assert op.filter == {"_id": str(ORDER), "_position": {"$lt": envelope.position}}


def test_item_changes_are_pipelines_that_recompute_totals_with_literal_skus() -> None:
    history = History()
    created(history)
    added = history.record(ItemAdded(order_id=ORDER, sku="$price.x", quantity=3, unit_price=250))
    op = only_update(OrderViews().apply(added))
    assert isinstance(op.update, list)
    stages = json.dumps(op.update, default=str)
    # A value starting with "$" would be read as a field path unless it is a literal.
    assert stages.count('"$price.x"') == stages.count('{"$literal": "$price.x"}') == 3
    assert op.update[1] == {"$set": {"total": {"$sum": "$items.line_total"}}}
    assert op.update[-1] == {"$set": {"_position": {"$literal": added.position}}}
    last_fields = op.update[-2]["$set"]
    assert last_fields["version"] == {"$literal": 1}
    assert last_fields["updated_at"] == {"$literal": added.occurred_at}
    assert '"line_total": {"$literal": 750}' in stages  # a new line: 3 x 250
    assert '"line_total": {"$add": ["$$line.line_total", {"$literal": 750}]}' in stages

    removed = history.record(ItemRemoved(order_id=ORDER, sku="$price.x"))
    op = only_update(OrderViews().apply(removed))
    assert isinstance(op.update, list)
    kept = op.update[0]["$set"]["items"]["$filter"]
    assert kept["cond"] == {"$ne": ["$$line.sku", {"$literal": "$price.x"}]}


def test_placed_takes_lines_and_total_from_the_snapshot() -> None:
    history = History()
    created(history)
    lines = (
        OrderLine(sku="a", quantity=2, unit_price=300),
        OrderLine(sku="b", quantity=1, unit_price=5),
    )
    placed = OrderPlaced(order_id=ORDER, customer_id="c-1", currency="EUR", lines=lines, total=605)
    envelope = history.record(placed, at=T0 + timedelta(hours=1))
    op = only_update(OrderViews().apply(envelope))
    assert op.update == {
        "$set": {
            "status": "placed",
            "items": [
                {"sku": "a", "quantity": 2, "unit_price": 300, "line_total": 600},
                {"sku": "b", "quantity": 1, "unit_price": 5, "line_total": 5},
            ],
            "total": 605,
            "outstanding": 605,
            "placed_at": T0 + timedelta(hours=1),
            "version": 1,
            "updated_at": T0 + timedelta(hours=1),
            "_position": envelope.position,
        }
    }


def test_payment_shipping_and_cancellation() -> None:
    history = History()
    created(history)
    projection = OrderViews()
    paid = history.record(
        PaymentReceived(order_id=ORDER, customer_id="c-1", currency="EUR", amount=605)
    )
    assert only_update(projection.apply(paid)).update == {
        "$set": {
            "status": "paid",
            "paid_at": paid.occurred_at,
            "version": 1,
            "updated_at": paid.occurred_at,
            "_position": paid.position,
        },
        "$inc": {"amount_paid": 605, "outstanding": -605},
    }
    shipped = history.record(
        OrderShipped(order_id=ORDER, customer_id="c-1", carrier="DHL", tracking_number="JD1")
    )
    assert set_fields(projection.apply(shipped)) == {
        "status": "shipped",
        "carrier": "DHL",
        "tracking_number": "JD1",
        "shipped_at": shipped.occurred_at,
        "version": 2,
        "updated_at": shipped.occurred_at,
        "_position": shipped.position,
    }
    cancelled = history.record(
        OrderCancelled(
            order_id=ORDER,
            customer_id="c-1",
            reason="changed mind",
            previous_status="paid",
            refund_due=605,
        )
    )
    assert set_fields(projection.apply(cancelled)) == {
        "status": "cancelled",
        "cancel_reason": "changed mind",
        "cancelled_from": "paid",
        "refund_due": 605,
        "outstanding": 0,
        "cancelled_at": cancelled.occurred_at,
        "version": 3,
        "updated_at": cancelled.occurred_at,
        "_position": cancelled.position,
    }


def test_indexes_serve_customer_orders_newest_first() -> None:
    keys = [index.keys for index in OrderViews.indexes]
    assert (("customer_id", 1), ("created_at", -1), ("_id", -1)) in keys
    assert (("customer_id", 1), ("status", 1), ("created_at", -1), ("_id", -1)) in keys
