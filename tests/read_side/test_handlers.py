"""Query handlers through the query bus, against the embedded MongoDB (or ``MONGO_URI``), on
documents seeded through the ``DocumentStore`` port."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from read_side.bootstrap import build_query_bus
from read_side.queries import GetCustomerSummary, GetDailySales, GetOrder, ListCustomerOrders
from read_side.views import Answer, OrderPage, OrderView
from shared.contract.read_models import CUSTOMER_SUMMARIES, DAILY_SALES, ORDER_VIEWS
from shared.messaging.bus import HandlerAlreadyRegistered, MessageBus, NoHandlerRegistered
from shared.messaging.messages import Query
from shared.ports.document_store import DocumentStore
from tests.conftest import unique
from tests.read_side.documents import day_document, order_document, summary_document
from tests.read_side.support import activate, seed, set_checkpoint

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
STATUSES = ("draft", "placed", "paid", "shipped", "cancelled")


@pytest.fixture
def bus(document_store: DocumentStore) -> MessageBus[Query]:
    return build_query_bus(document_store)


# --- the bus --------------------------------------------------------------------------------


def test_the_bus_answers_every_query_and_refuses_a_second_handler(
    bus: MessageBus[Query],
) -> None:
    assert bus.registered == {GetOrder, ListCustomerOrders, GetCustomerSummary, GetDailySales}

    async def other(query: GetOrder) -> None: ...

    with pytest.raises(HandlerAlreadyRegistered):
        bus.register(GetOrder, other)


async def test_an_unregistered_query_is_refused(bus: MessageBus[Query]) -> None:
    class Unknown(Query):
        pass

    with pytest.raises(NoHandlerRegistered):
        await bus.dispatch(Unknown())


# --- one order ------------------------------------------------------------------------------


async def test_get_order_returns_the_view_with_integer_money_and_utc_times(
    bus: MessageBus[Query], document_store: DocumentStore
) -> None:
    document = order_document(customer_id=unique("c"), created_at=START, status="shipped")
    await seed(document_store, ORDER_VIEWS, [document])
    await set_checkpoint(document_store, ORDER_VIEWS, 17)

    answer: Answer[OrderView | None] = await bus.dispatch(
        GetOrder(order_id=uuid.UUID(document["_id"]))
    )
    assert (answer.position, answer.stale) == (17, False)
    view = answer.value
    assert view is not None
    assert str(view.order_id) == document["_id"]
    assert (view.status, view.total, view.amount_paid, view.outstanding) == (
        "shipped",
        2500,
        2500,
        0,
    )
    assert view.items[0].line_total == 2500 and isinstance(view.items[0].line_total, int)
    assert (view.carrier, view.tracking_number, view.version) == ("DHL", "TRK-1", 3)
    assert view.shipping_address.city == "Dublin"
    assert view.created_at == START and view.created_at.tzinfo is not None
    assert "_position" not in view.model_dump()


async def test_an_unknown_order_is_none(bus: MessageBus[Query]) -> None:
    answer = await bus.dispatch(GetOrder(order_id=uuid.uuid4()))
    assert answer.value is None
    assert (answer.position, answer.stale) == (0, False)


async def test_reads_the_active_version_only(
    bus: MessageBus[Query], document_store: DocumentStore
) -> None:
    order_id = str(uuid.uuid4())
    old = order_document(customer_id="c", created_at=START, order_id=order_id, status="draft")
    new = order_document(customer_id="c", created_at=START, order_id=order_id, status="paid")
    await seed(document_store, ORDER_VIEWS, [old], version=1)
    await seed(document_store, ORDER_VIEWS, [new], version=2)
    query = GetOrder(order_id=uuid.UUID(order_id))

    assert (await bus.dispatch(query)).value.status == "draft"
    await activate(document_store, ORDER_VIEWS, 2)
    assert (await bus.dispatch(query)).value.status == "paid"


async def test_a_token_the_read_model_has_not_reached_answers_stale(
    bus: MessageBus[Query], document_store: DocumentStore
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 5)
    answer = await bus.dispatch(GetOrder(order_id=uuid.uuid4(), min_position=6, wait_ms=20))
    assert answer.value is None
    assert (answer.position, answer.stale) == (5, True)


# --- a customer's orders --------------------------------------------------------------------


async def seed_customer_orders(
    store: DocumentStore, customer_id: str, count: int
) -> list[dict[str, Any]]:
    """``count`` orders of one customer in every status; groups of three share a creation time
    (so the id breaks ties), plus orders of other customers that must never show up."""
    mine = [
        order_document(
            customer_id=customer_id,
            created_at=START + timedelta(seconds=i // 3),
            status=STATUSES[i % len(STATUSES)],
        )
        for i in range(count)
    ]
    others = [
        order_document(customer_id=unique("other"), created_at=START + timedelta(seconds=i))
        for i in range(5)
    ]
    await seed(store, ORDER_VIEWS, mine + others)
    return mine


def newest_first(documents: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(documents, key=lambda d: (d["created_at"], d["_id"]), reverse=True)
    return [d["_id"] for d in ordered]


async def all_pages(bus: MessageBus[Query], **fields: Any) -> tuple[list[str], list[OrderPage]]:
    ids: list[str] = []
    pages: list[OrderPage] = []
    cursor = None
    for _ in range(100):  # bound: a cursor that never ends fails instead of hanging
        answer: Answer[OrderPage] = await bus.dispatch(ListCustomerOrders(cursor=cursor, **fields))
        pages.append(answer.value)
        ids += [str(item.order_id) for item in answer.value.items]
        cursor = answer.value.next_cursor
        if cursor is None:
            return ids, pages
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [2, 9, 10, 45, 100])
async def test_pages_list_every_order_once_newest_first(
    bus: MessageBus[Query], document_store: DocumentStore, limit: int
) -> None:
    customer = unique("cust")
    mine = await seed_customer_orders(document_store, customer, 45)

    ids, pages = await all_pages(bus, customer_id=customer, limit=limit)

    assert ids == newest_first(mine)
    assert all(len(page.items) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1].items) <= limit  # an exact multiple ends without an empty page
    assert len(pages) == -(-45 // limit)


@pytest.mark.parametrize("status", STATUSES)
async def test_pages_filtered_by_status(
    bus: MessageBus[Query], document_store: DocumentStore, status: str
) -> None:
    customer = unique("cust")
    mine = await seed_customer_orders(document_store, customer, 45)

    ids, _ = await all_pages(bus, customer_id=customer, status=status, limit=4)

    assert ids == newest_first([d for d in mine if d["status"] == status])
    assert len(ids) == 9


async def test_cursors_are_stable_while_new_orders_arrive(
    bus: MessageBus[Query], document_store: DocumentStore
) -> None:
    customer = unique("cust")
    mine = await seed_customer_orders(document_store, customer, 45)
    first: Answer[OrderPage] = await bus.dispatch(
        ListCustomerOrders(customer_id=customer, limit=10)
    )
    cursor = first.value.next_cursor
    assert cursor is not None

    again = await bus.dispatch(ListCustomerOrders(customer_id=customer, limit=10, cursor=cursor))
    await seed(
        document_store,
        ORDER_VIEWS,
        [order_document(customer_id=customer, created_at=START + timedelta(days=1))],
    )
    after_insert = await bus.dispatch(
        ListCustomerOrders(customer_id=customer, limit=10, cursor=cursor)
    )

    assert again.value == after_insert.value
    assert [str(o.order_id) for o in again.value.items] == newest_first(mine)[10:20]


async def test_a_customer_without_orders_has_an_empty_last_page(bus: MessageBus[Query]) -> None:
    answer = await bus.dispatch(ListCustomerOrders(customer_id=unique("nobody")))
    assert answer.value == OrderPage(items=[], next_cursor=None)


# --- customer summaries ---------------------------------------------------------------------


async def test_customer_summary(bus: MessageBus[Query], document_store: DocumentStore) -> None:
    customer = unique("cust")
    await seed(document_store, CUSTOMER_SUMMARIES, [summary_document(customer)])
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 42)

    answer = await bus.dispatch(GetCustomerSummary(customer_id=customer))

    assert answer.position == 42
    summary = answer.value
    assert summary.customer_id == customer
    assert summary.orders_by_status == {
        "draft": 1,
        "placed": 1,
        "paid": 2,
        "shipped": 3,
        "cancelled": 1,
    }
    assert (summary.order_count, summary.open_orders) == (8, 4)
    assert summary.lifetime_paid == {"EUR": 12500, "USD": 999}
    assert summary.last_order_at == datetime(2025, 3, 1, 9, 15, tzinfo=UTC)


async def test_summary_fills_statuses_missing_from_the_document(
    bus: MessageBus[Query], document_store: DocumentStore
) -> None:
    customer = unique("cust")
    partial = summary_document(customer, orders_by_status={"paid": 1}, lifetime_paid={})
    await seed(document_store, CUSTOMER_SUMMARIES, [partial])
    summary = (await bus.dispatch(GetCustomerSummary(customer_id=customer))).value
    assert summary.orders_by_status == {s: int(s == "paid") for s in STATUSES}
    assert summary.lifetime_paid == {}


async def test_an_unknown_customer_has_an_all_zero_summary(bus: MessageBus[Query]) -> None:
    customer = unique("nobody")
    summary = (await bus.dispatch(GetCustomerSummary(customer_id=customer))).value
    assert summary.customer_id == customer
    assert summary.orders_by_status == dict.fromkeys(STATUSES, 0)
    assert (summary.order_count, summary.open_orders, summary.lifetime_paid) == (0, 0, {})
    assert summary.last_order_at is None


# --- daily sales ----------------------------------------------------------------------------


async def test_daily_sales_over_a_range(
    bus: MessageBus[Query], document_store: DocumentStore
) -> None:
    await seed(
        document_store,
        DAILY_SALES,
        [
            day_document("2025-02-28"),  # before the range
            day_document("2025-03-01"),
            day_document("2025-03-03", orders_placed=1, placed_value={"EUR": 100}, skus={}),
            day_document("2025-03-04"),  # after the range
        ],
    )
    answer = await bus.dispatch(GetDailySales(from_day=date(2025, 3, 1), to_day=date(2025, 3, 3)))
    report = answer.value

    assert [d.day for d in report.days] == [date(2025, 3, d) for d in (1, 2, 3)]
    first, empty, third = report.days
    assert (first.orders_placed, first.placed_value, first.revenue) == (
        2,
        {"EUR": 4000, "USD": 700},
        {"EUR": 2500},
    )
    assert [(s.currency, s.sku, s.units, s.revenue) for s in first.skus] == [
        ("EUR", "CUP.2", 1, 1500),
        ("EUR", "MUG", 2, 2500),
        ("USD", "MUG", 1, 700),
    ]
    assert (empty.orders_placed, empty.placed_value, empty.revenue, empty.skus) == (0, {}, {}, [])
    assert (third.orders_placed, third.placed_value, third.skus) == (1, {"EUR": 100}, [])

    totals = report.totals
    assert (totals.orders_placed, totals.payments_received) == (3, 2)
    assert totals.placed_value == {"EUR": 4100, "USD": 700}
    assert totals.revenue == {"EUR": 5000}
    assert [(s.currency, s.sku, s.units) for s in totals.skus] == [
        ("EUR", "CUP.2", 1),
        ("EUR", "MUG", 2),
        ("USD", "MUG", 1),
    ]


async def test_daily_sales_of_one_day_without_sales(bus: MessageBus[Query]) -> None:
    day = date(1999, 1, 1)
    report = (await bus.dispatch(GetDailySales(from_day=day, to_day=day))).value
    assert [(d.day, d.orders_placed) for d in report.days] == [(day, 0)]
    assert report.totals.orders_placed == 0
