"""daily_sales, pure: one conditional upsert of the UTC day's document per event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from projector.projections.daily_sales import DailySales, day_of, sku_key
from projector.projections.operations import field_key, insert_defaults
from shared.document_store import UpdateOne
from shared.orders_events import OrderCreated, OrderLine, OrderPlaced, PaymentReceived
from tests.projections.history import HOME, History

ORDER = uuid4()
CEST = timezone(timedelta(hours=2))


def placed(*lines: OrderLine, currency: str = "EUR") -> OrderPlaced:
    total = sum(line.quantity * line.unit_price for line in lines)
    return OrderPlaced(order_id=ORDER, customer_id="c", currency=currency, lines=lines, total=total)


def test_placed_counts_the_order_and_its_skus_by_currency() -> None:
    # 01:30 in UTC+2 is still the previous day in UTC.
    envelope = History().record(
        placed(
            OrderLine(sku="a.b", quantity=2, unit_price=300),
            OrderLine(sku="$x", quantity=1, unit_price=5),
        ),
        at=datetime(2025, 3, 2, 1, 30, tzinfo=CEST),
    )
    [op] = DailySales().apply(envelope)
    assert isinstance(op, UpdateOne)
    assert op.upsert is True
    assert op.filter == {"_id": "2025-03-01", "_position": {"$lt": envelope.position}}
    assert op.update == {
        "$inc": {
            "orders_placed": 1,
            "placed_value.EUR": 605,
            "skus.EUR:a%2Eb.units": 2,
            "skus.EUR:a%2Eb.revenue": 600,
            "skus.EUR:%24x.units": 1,
            "skus.EUR:%24x.revenue": 5,
        },
        "$set": {
            "skus.EUR:a%2Eb.sku": "a.b",
            "skus.EUR:a%2Eb.currency": "EUR",
            "skus.EUR:%24x.sku": "$x",
            "skus.EUR:%24x.currency": "EUR",
            "day": "2025-03-01",
            "updated_at": envelope.occurred_at,
            "_position": envelope.position,
        },
        "$setOnInsert": {"payments_received": 0, "revenue": {}},
    }


def test_a_sku_listed_twice_is_counted_in_one_entry() -> None:
    envelope = History().record(
        placed(
            OrderLine(sku="a", quantity=2, unit_price=3),
            OrderLine(sku="a", quantity=1, unit_price=3),
        )
    )
    [op] = DailySales().apply(envelope)
    assert isinstance(op, UpdateOne)
    assert isinstance(op.update, dict)
    assert op.update["$inc"]["skus.EUR:a.units"] == 3
    assert op.update["$inc"]["skus.EUR:a.revenue"] == 9


def test_payment_adds_revenue_received_in_its_currency() -> None:
    envelope = History().record(
        PaymentReceived(order_id=ORDER, customer_id="c", currency="USD", amount=999),
        at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    [op] = DailySales().apply(envelope)
    assert isinstance(op, UpdateOne)
    assert op.filter == {"_id": "2025-12-31", "_position": {"$lt": envelope.position}}
    assert op.update == {
        "$inc": {"payments_received": 1, "revenue.USD": 999},
        "$set": {
            "day": "2025-12-31",
            "updated_at": envelope.occurred_at,
            "_position": envelope.position,
        },
        "$setOnInsert": {"orders_placed": 0, "placed_value": {}, "skus": {}},
    }


def test_other_events_do_not_concern_daily_sales() -> None:
    event = OrderCreated(order_id=ORDER, customer_id="c", currency="EUR", shipping_address=HOME)
    assert DailySales().apply(History().record(event)) == ()


def test_day_is_the_utc_date() -> None:
    envelope = History().record(placed(), at=datetime(2025, 1, 1, 0, 30, tzinfo=CEST))
    assert day_of(envelope) == "2024-12-31"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("EUR", "EUR"),
        ("a.b", "a%2Eb"),
        ("$x", "%24x"),
        ("100%", "100%25"),
        ("nul\x00", "nul%00"),
        ("ü-ß ok", "ü-ß ok"),
    ],
)
def test_field_keys_escape_what_mongodb_field_names_cannot_hold(text: str, key: str) -> None:
    assert field_key(text) == key


def test_sku_keys_separate_currencies() -> None:
    assert sku_key("EUR", "a") != sku_key("USD", "a")
    assert sku_key("EUR", "a.b") == "EUR:a%2Eb"


def test_insert_defaults_leave_out_paths_the_update_writes() -> None:
    defaults = {"a": 0, "m": {}, "n.x": 0, "n.y": 0, "z": None}
    update = {"$inc": {"m.EUR": 1, "n.x": 1}, "$max": {"z": 5}}
    assert insert_defaults(defaults, update) == {"a": 0, "n.y": 0}
