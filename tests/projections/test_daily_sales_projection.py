"""daily_sales, pure: each event folds into the document of its UTC day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from projector.projection import EventEnvelope
from projector.projections.daily_sales import DailySales, day_of, sku_key
from projector.projections.operations import field_key
from shared.contract.order_events import OrderCreated, OrderLine, OrderPlaced, PaymentReceived
from shared.contract.read_model_sums import INT64_MAX, sum_of
from shared.ports.document_store import Document
from tests.projections.history import HOME, History, fold
from tests.projections.maximal import (
    BEYOND_INT64,
    LINE_VALUE,
    LINES,
    maximal_order,
    maximal_payment,
)
from write_side.domain.limits import MAX_ORDER_TOTAL, MAX_PAYMENT, MAX_QUANTITY

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
    assert fold(DailySales(), [envelope]) == {
        "2025-03-01": {
            "_id": "2025-03-01",
            "day": "2025-03-01",
            "orders_placed": 1,
            "placed_value": {"EUR": 605},
            "payments_received": 0,
            "revenue": {},
            "skus": {
                "EUR:a%2Eb": {"sku": "a.b", "currency": "EUR", "units": 2, "revenue": 600},
                "EUR:%24x": {"sku": "$x", "currency": "EUR", "units": 1, "revenue": 5},
            },
            "updated_at": envelope.occurred_at,
            "_position": envelope.position,
        }
    }


def test_a_sku_listed_twice_is_counted_in_one_entry() -> None:
    envelope = History().record(
        placed(
            OrderLine(sku="a", quantity=2, unit_price=3),
            OrderLine(sku="a", quantity=1, unit_price=3),
        )
    )
    [document] = fold(DailySales(), [envelope]).values()
    assert document["skus"] == {"EUR:a": {"sku": "a", "currency": "EUR", "units": 3, "revenue": 9}}


def test_payment_adds_revenue_received_in_its_currency() -> None:
    envelope = History().record(
        PaymentReceived(order_id=ORDER, customer_id="c", currency="USD", amount=999),
        at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    before: Document = {
        "_id": "2025-12-31",
        "day": "2025-12-31",
        "orders_placed": 2,
        "placed_value": {"USD": 5000},
        "payments_received": 1,
        "revenue": {"USD": 1, "EUR": 7},
        "skus": {},
        "updated_at": envelope.occurred_at - timedelta(hours=1),
        "_position": 1,
    }
    assert fold(DailySales(), [envelope], {"2025-12-31": before}) == {
        "2025-12-31": before
        | {
            "payments_received": 2,
            "revenue": {"USD": 1000, "EUR": 7},
            "updated_at": envelope.occurred_at,
            "_position": envelope.position,
        }
    }
    assert before["revenue"] == {"USD": 1, "EUR": 7}, "the document given is not changed"


def test_other_events_do_not_concern_daily_sales() -> None:
    event = OrderCreated(order_id=ORDER, customer_id="c", currency="EUR", shipping_address=HOME)
    assert fold(DailySales(), [History().record(event)]) == {}


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


# --- sums beyond int64 (93 maximal orders in one day) ------------------------------------------

DAY = datetime(2025, 3, 1, 9, tzinfo=UTC)


def maximal_day(history: History) -> list[EventEnvelope]:
    """``BEYOND_INT64`` maximal orders placed and paid on one day: each order's two events."""
    envelopes: list[EventEnvelope] = []
    for _ in range(BEYOND_INT64):
        order = uuid4()
        envelopes.append(history.record(maximal_order(order, "c"), at=DAY))
        envelopes.append(history.record(maximal_payment(order, "c"), at=DAY))
    return envelopes


def test_a_day_of_maximal_orders_sums_beyond_int64_exactly() -> None:
    [document] = fold(DailySales(), maximal_day(History())).values()
    assert document["placed_value"] == {"EUR": str(BEYOND_INT64 * MAX_ORDER_TOTAL)}
    assert document["revenue"] == {"EUR": str(BEYOND_INT64 * MAX_PAYMENT)}
    assert sum_of(document["revenue"]["EUR"]) > INT64_MAX
    assert (document["orders_placed"], document["payments_received"]) == (BEYOND_INT64,) * 2
    # A SKU's units and value stay ints: one maximal line is far from int64.
    assert document["skus"][sku_key("EUR", LINES[0].sku)] == {
        "sku": LINES[0].sku,
        "currency": "EUR",
        "units": BEYOND_INT64 * MAX_QUANTITY,
        "revenue": BEYOND_INT64 * LINE_VALUE,
    }


def test_one_maximal_order_fewer_still_stores_plain_ints() -> None:
    """The documents of today's days are unchanged: a sum within int64 is an int."""
    [document] = fold(DailySales(), maximal_day(History())[:-2]).values()
    assert document["placed_value"] == {"EUR": (BEYOND_INT64 - 1) * MAX_ORDER_TOTAL}
    assert document["revenue"] == {"EUR": (BEYOND_INT64 - 1) * MAX_PAYMENT}


def test_a_day_already_beyond_int64_keeps_adding_exactly() -> None:
    """The projection reads its stored decimal strings back and adds to them."""
    history = History()
    envelopes = maximal_day(history)
    beyond = fold(DailySales(), envelopes)
    more = maximal_day(history)
    [document] = fold(DailySales(), more, beyond).values()
    assert fold(DailySales(), envelopes + more) == {document["_id"]: document}
    assert document["placed_value"] == {"EUR": str(2 * BEYOND_INT64 * MAX_ORDER_TOTAL)}
    assert document["revenue"] == {"EUR": str(2 * BEYOND_INT64 * MAX_PAYMENT)}


def test_a_skus_value_beyond_int64_is_stored_exactly() -> None:
    """One SKU's value passes int64 after about 9,200 maximal lines in a day."""
    envelope = History().record(maximal_order(ORDER, "c"))
    day = day_of(envelope)
    key = sku_key("EUR", LINES[0].sku)
    near = {"sku": LINES[0].sku, "currency": "EUR", "units": 7, "revenue": INT64_MAX - 1}
    before: Document = {"_id": day, "skus": {key: near}, "_position": 1}
    [document] = fold(DailySales(), [envelope], {day: before}).values()
    assert document["skus"][key] == near | {
        "units": 7 + MAX_QUANTITY,
        "revenue": str(INT64_MAX - 1 + LINE_VALUE),
    }
