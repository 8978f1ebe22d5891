"""A day (and a customer) of maximal orders on embedded-mongo (or MONGO_URI), the way the runner
applies a batch: the sums pass int64, which MongoDB cannot store as an integer. The batch must
still be written (before, the projection failed on it forever, stalled for every user), and the
read side must answer the exact sums."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.projection import EventEnvelope
from projector.projections import all_projections
from read_side.bootstrap import build_query_bus
from read_side.queries import GetCustomerSummary, GetDailySales, GetOrder
from shared.contract.order_events import OrderCreated, build_order_event_registry
from shared.contract.read_model_sums import INT64_MAX
from shared.contract.read_models import DAILY_SALES, collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from tests.projections.history import HOME, History, recorded
from tests.projections.maximal import (
    BEYOND_INT64,
    LINE_VALUE,
    LINES,
    maximal_order,
    maximal_payment,
)
from write_side.domain.limits import MAX_ORDER_TOTAL, MAX_PAYMENT, MAX_QUANTITY

DAY = datetime(2025, 3, 1, 9, tzinfo=UTC)
CUSTOMER = "big-spender"


def maximal_orders(history: History, count: int) -> list[EventEnvelope]:
    """``count`` orders of ``CUSTOMER`` created, placed at the largest total and paid, on DAY."""
    envelopes: list[EventEnvelope] = []
    for _ in range(count):
        order = uuid4()
        created = OrderCreated(
            order_id=order, customer_id=CUSTOMER, currency="EUR", shipping_address=HOME
        )
        envelopes.append(history.record(created, at=DAY))
        envelopes.append(history.record(maximal_order(order, CUSTOMER), at=DAY))
        envelopes.append(history.record(maximal_payment(order, CUSTOMER), at=DAY))
    return envelopes


async def project(store: DocumentStore, envelopes: list[EventEnvelope], after: int) -> None:
    """One batch as the runner applies it, every target's checkpoint at ``after``."""
    targets = [Target(projection, 1, position=after) for projection in all_projections()]
    for target in targets:
        await store.ensure_indexes(target.collection, target.projection.indexes)
    dispatcher = Dispatcher(store, build_order_event_registry(), utc_now)
    plans = await dispatcher.apply(Batch([recorded(e) for e in envelopes]), targets, {})
    assert [(plan.target.name, plan.trouble, plan.outcome.failure) for plan in plans] == [
        (target.name, None, None) for target in targets
    ]
    assert all(plan.outcome.position == envelopes[-1].position for plan in plans)


async def test_sums_beyond_int64_are_written_and_read_back_exactly(store: DocumentStore) -> None:
    history = History()
    first = maximal_orders(history, BEYOND_INT64)
    await project(store, first, 0)
    # The projector reads what it stored beyond int64 back and adds to it.
    more = maximal_orders(history, 2)
    await project(store, more, first[-1].position)
    orders = BEYOND_INT64 + 2

    stored = await store.find_one(collection_name(DAILY_SALES, 1), {"_id": DAY.date().isoformat()})
    assert stored is not None
    assert stored["revenue"] == {"EUR": str(orders * MAX_PAYMENT)}

    bus = build_query_bus(store)
    report = (await bus.dispatch(GetDailySales(from_day=DAY.date(), to_day=DAY.date()))).value
    [day] = report.days
    assert day.day == date(2025, 3, 1)
    assert (day.orders_placed, day.payments_received) == (orders, orders)
    assert day.placed_value == {"EUR": orders * MAX_ORDER_TOTAL}
    assert day.revenue == {"EUR": orders * MAX_PAYMENT}
    assert day.revenue["EUR"] > INT64_MAX
    assert [(s.sku, s.units, s.revenue) for s in day.skus] == [
        (line.sku, orders * MAX_QUANTITY, orders * LINE_VALUE) for line in LINES
    ]
    assert report.totals.revenue == day.revenue

    summary = (await bus.dispatch(GetCustomerSummary(customer_id=CUSTOMER))).value
    assert summary.lifetime_paid == {"EUR": orders * MAX_PAYMENT}
    assert (summary.order_count, summary.orders_by_status["paid"]) == (orders, orders)

    order_id = first[0].event.order_id  # type: ignore[attr-defined]
    order = (await bus.dispatch(GetOrder(order_id=order_id))).value
    assert order is not None
    assert (order.total, order.amount_paid, order.outstanding) == (MAX_ORDER_TOTAL, MAX_PAYMENT, 0)
