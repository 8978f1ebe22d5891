"""daily_sales, pure: each event folds into the document of its UTC day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import bson
import pytest

from projector.projection import EventEnvelope
from projector.projections.daily_sales import DailySales, day_of, sku_key
from projector.projections.operations import field_key
from shared.contract.daily_sales_skus import MAX_SKUS_PER_DAY
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
from write_side.domain.currencies import ORDER_CURRENCIES
from write_side.domain.limits import (
    MAX_LINES,
    MAX_ORDER_TOTAL,
    MAX_PAYMENT,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
)

ORDER = uuid4()
MONGODB_DOCUMENT_LIMIT = 16 * 2**20  # BSON bytes
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


# --- at most MAX_SKUS_PER_DAY SKUs listed per day; the rest summed per currency ----------------


def sku_lines(first: int, count: int, quantity: int = 2, unit_price: int = 7) -> list[OrderLine]:
    """``count`` lines of distinct SKUs numbered from ``first``."""
    return [
        OrderLine(sku=f"SKU-{n:05}", quantity=quantity, unit_price=unit_price)
        for n in range(first, first + count)
    ]


def orders_of(lines: list[OrderLine], currency: str = "EUR") -> list[OrderPlaced]:
    """``lines`` placed in orders of at most ``MAX_LINES`` lines each."""
    return [
        placed(*lines[start : start + MAX_LINES], currency=currency)
        for start in range(0, len(lines), MAX_LINES)
    ]


def sales_of(lines: list[OrderLine]) -> dict[str, int]:
    return {
        "units": sum(line.quantity for line in lines),
        "revenue": sum(line.quantity * line.unit_price for line in lines),
    }


def test_a_day_lists_at_most_the_bound_and_sums_further_skus_per_currency() -> None:
    # Given a day selling more distinct SKUs than it may list: EUR orders of distinct SKUs,
    # then a USD order of new SKUs, then an EUR order of a SKU listed and one not listed.
    history = History()
    eur = sku_lines(0, MAX_SKUS_PER_DAY + 150)
    usd = sku_lines(90_000, 3, quantity=5, unit_price=11)
    again = [
        OrderLine(sku=eur[0].sku, quantity=4, unit_price=eur[0].unit_price),
        OrderLine(sku=eur[-1].sku, quantity=1, unit_price=eur[-1].unit_price),
    ]
    events = [*orders_of(eur), *orders_of(usd, "USD"), placed(*again)]

    # When the day is folded
    [document] = fold(DailySales(), [history.record(event) for event in events]).values()

    # Then the first MAX_SKUS_PER_DAY SKUs sold are listed, and still counted when sold again
    listed, spilled = eur[:MAX_SKUS_PER_DAY], eur[MAX_SKUS_PER_DAY:]
    assert len(document["skus"]) == MAX_SKUS_PER_DAY
    assert sorted(entry["sku"] for entry in document["skus"].values()) == [
        line.sku for line in listed
    ]
    assert document["skus"][sku_key("EUR", eur[0].sku)] == {
        "sku": eur[0].sku,
        "currency": "EUR",
        **sales_of([eur[0], again[0]]),
    }
    # and what the rest sold is summed per currency, exactly
    assert document["other_skus"] == {
        "EUR": sales_of([*spilled, again[1]]),
        "USD": sales_of(usd),
    }
    # and the day's totals are those of every order placed
    assert document["orders_placed"] == len(events)
    assert document["placed_value"] == {
        "EUR": sum(event.total for event in events if event.currency == "EUR"),
        "USD": sum(event.total for event in events if event.currency == "USD"),
    }
    # so, per currency, listed SKUs and other SKUs add up to the value placed.
    for currency, value in document["placed_value"].items():
        listed_value = sum(
            entry["revenue"] for entry in document["skus"].values() if entry["currency"] == currency
        )
        assert listed_value + document["other_skus"][currency]["revenue"] == value


def test_a_day_listing_exactly_the_bound_has_no_other_skus() -> None:
    """Days within the bound (all days written before it existed) keep their shape."""
    history = History()
    events = orders_of(sku_lines(0, MAX_SKUS_PER_DAY))
    [document] = fold(DailySales(), [history.record(event) for event in events]).values()
    assert len(document["skus"]) == MAX_SKUS_PER_DAY
    assert "other_skus" not in document


def test_other_skus_sum_beyond_int64_exactly() -> None:
    # Given a day that lists as many SKUs as it may, none of a maximal order's
    history = History()
    full = [history.record(event) for event in orders_of(sku_lines(0, MAX_SKUS_PER_DAY))]
    # When BEYOND_INT64 maximal orders are placed that day
    maximal = [history.record(maximal_order(uuid4(), "c"), at=DAY) for _ in range(BEYOND_INT64)]
    [document] = fold(DailySales(), full + maximal).values()
    # Then their lines are summed in other_skus, as exact decimal strings beyond int64.
    assert len(document["skus"]) == MAX_SKUS_PER_DAY
    assert document["other_skus"] == {
        "EUR": {
            "units": BEYOND_INT64 * MAX_LINES * MAX_QUANTITY,
            "revenue": str(BEYOND_INT64 * MAX_ORDER_TOTAL),
        }
    }


# The worst case the bound allows: every SKU of 64 four-byte characters, every sum 40 digits.
WORST_SUM = "9" * 40


def widest_sku(n: int) -> str:
    """A distinct SKU of ``MAX_SKU_LENGTH`` characters of four UTF-8 bytes each."""
    return "".join(chr(0x10000 + n * MAX_SKU_LENGTH + i) for i in range(MAX_SKU_LENGTH))


def at_worst_sums(document: Document) -> Document:
    """``document`` with every sum it keeps at ``WORST_SUM``."""
    worst = dict.fromkeys(("units", "revenue"), WORST_SUM)
    return {
        **document,
        "placed_value": dict.fromkeys(document["placed_value"], WORST_SUM),
        "revenue": dict.fromkeys(document["revenue"], WORST_SUM),
        "skus": {key: entry | worst for key, entry in document["skus"].items()},
        "other_skus": dict.fromkeys(document["other_skus"], worst),
    }


def test_the_largest_day_stays_far_below_the_16_mib_document_limit() -> None:
    # Given a day listing the bound of the widest SKUs, and every currency an order may be
    # placed in with a further SKU and a payment
    history = History()
    widest = [
        OrderLine(sku=widest_sku(n), quantity=1, unit_price=1) for n in range(MAX_SKUS_PER_DAY)
    ]
    events: list[OrderPlaced | PaymentReceived] = [*orders_of(widest)]
    for index, currency in enumerate(sorted(ORDER_CURRENCIES)):
        line = OrderLine(sku=widest_sku(MAX_SKUS_PER_DAY + index), quantity=1, unit_price=1)
        events.append(placed(line, currency=currency))
        events.append(PaymentReceived(order_id=ORDER, customer_id="c", currency=currency, amount=1))
    [document] = fold(DailySales(), [history.record(event) for event in events]).values()
    assert len(document["skus"]) == MAX_SKUS_PER_DAY
    assert len(document["other_skus"]) == len(ORDER_CURRENCIES)

    # When every sum it keeps has grown to 40 digits (10^22 maximal orders in a day)
    worst = at_worst_sums(document)

    # Then its BSON stays under 1 MiB, a sixteenth of what MongoDB stores.
    assert len(bson.encode(worst)) < 2**20 == MONGODB_DOCUMENT_LIMIT // 16
