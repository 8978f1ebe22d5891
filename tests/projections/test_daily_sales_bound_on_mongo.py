"""A hostile day on embedded-mongo (or MONGO_URI), projected the way the runner applies batches:
enough maximal orders of 100 distinct 64-character SKUs (SKUs the API accepts, mostly dots,
which a field name escapes to three bytes) that listing every SKU would take the day's document
past MongoDB's 16 MiB limit. Before ``MAX_SKUS_PER_DAY``, MongoDB refused that document and
daily_sales stopped on the event for every user; now the day lists the bound, sums the rest per
currency, and the read side answers it exactly.

The embedded server stores a document past 16 MiB that MongoDB refuses (for an acknowledged bulk
write the driver leaves that check to the server), so the size of the stored document is checked
here; against a real MongoDB (MONGO_URI) the old write itself failed and stopped the projection.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from uuid import uuid4

import bson

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.projection import EventEnvelope
from projector.projections.daily_sales import DailySales, sku_key
from read_side.bootstrap import build_query_bus
from read_side.queries import GetDailySales
from read_side.views import OtherSkus
from shared.contract.daily_sales_skus import MAX_SKUS_PER_DAY
from shared.contract.order_events import OrderLine, OrderPlaced, build_order_event_registry
from shared.contract.read_models import DAILY_SALES, collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from tests.projections.history import History
from tests.projections.test_projections_on_mongo import recorded
from write_side.domain.limits import (
    MAX_LINES,
    MAX_ORDER_TOTAL,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    MAX_UNIT_PRICE,
)
from write_side.http.models import SKU_PATTERN

DAY = datetime(2025, 3, 1, 9, tzinfo=UTC)
MONGODB_DOCUMENT_LIMIT = 16 * 2**20  # BSON bytes
BATCH = 100  # events per batch, as the runner would deliver them


def hostile_sku(n: int) -> str:
    return f"{n:07}".ljust(MAX_SKU_LENGTH, ".")


def unbounded_entry_bytes() -> int:
    """The BSON bytes one SKU of the hostile day took when every SKU was listed."""
    sku = hostile_sku(0)
    value = MAX_QUANTITY * MAX_UNIT_PRICE
    entry = {"sku": sku, "currency": "EUR", "units": MAX_QUANTITY, "revenue": value}
    empty = len(bson.encode({}))
    return len(bson.encode({sku_key("EUR", sku): entry})) - empty


# The fewest hostile orders whose SKU entries alone pass the limit.
ORDERS = math.ceil(MONGODB_DOCUMENT_LIMIT / (MAX_LINES * unbounded_entry_bytes())) + 1


async def project(store: DocumentStore, envelopes: list[EventEnvelope], after: int) -> None:
    """One batch as the runner applies it to daily_sales, its checkpoint at ``after``: every
    event must be applied and written (a refused document stops the projection on its event)."""
    target = Target(DailySales(), 1, position=after)
    dispatcher = Dispatcher(store, build_order_event_registry(), utc_now)
    [plan] = await dispatcher.apply(Batch([recorded(e) for e in envelopes]), [target], {})
    assert (plan.trouble, plan.outcome.failure) == (None, None)
    assert plan.outcome.position == envelopes[-1].position


def hostile_day(history: History) -> list[EventEnvelope]:
    envelopes = []
    for index in range(ORDERS):
        lines = tuple(
            OrderLine(
                sku=hostile_sku(index * MAX_LINES + n),
                quantity=MAX_QUANTITY,
                unit_price=MAX_UNIT_PRICE,
            )
            for n in range(MAX_LINES)
        )
        order = OrderPlaced(
            order_id=uuid4(), customer_id="c", currency="EUR", lines=lines, total=MAX_ORDER_TOTAL
        )
        envelopes.append(history.record(order, at=DAY))
    return envelopes


async def test_a_day_of_hostile_skus_is_written_and_read_back(store: DocumentStore) -> None:
    assert re.fullmatch(SKU_PATTERN, hostile_sku(ORDERS * MAX_LINES)), "the API accepts them"
    assert ORDERS * MAX_LINES * unbounded_entry_bytes() > MONGODB_DOCUMENT_LIMIT
    # Given a day of hostile orders, delivered in batches
    envelopes = hostile_day(History())

    # When the projector applies them (every batch must be written: nothing fails or stalls)
    after = 0
    for start in range(0, len(envelopes), BATCH):
        batch = envelopes[start : start + BATCH]
        await project(store, batch, after)
        after = batch[-1].position

    # Then the day's document is one MongoDB can store, listing the bound
    stored = await store.find_one(collection_name(DAILY_SALES, 1), {"_id": DAY.date().isoformat()})
    assert stored is not None
    size = len(bson.encode(stored))
    assert size <= MONGODB_DOCUMENT_LIMIT, f"MongoDB refuses a document of {size} bytes"
    assert size <= MONGODB_DOCUMENT_LIMIT // 16
    assert len(stored["skus"]) == MAX_SKUS_PER_DAY

    # and the read side answers the first SKUs sold, the rest per currency, and exact totals.
    orders = [envelope.event for envelope in envelopes if isinstance(envelope.event, OrderPlaced)]
    lines = [line for order in orders for line in order.lines]
    listed, spilled = lines[:MAX_SKUS_PER_DAY], lines[MAX_SKUS_PER_DAY:]
    bus = build_query_bus(store)
    report = (await bus.dispatch(GetDailySales(from_day=DAY.date(), to_day=DAY.date()))).value
    [day] = report.days
    assert day.orders_placed == ORDERS
    assert day.placed_value == {"EUR": ORDERS * MAX_ORDER_TOTAL}
    assert [(s.currency, s.sku, s.units, s.revenue) for s in day.skus] == [
        ("EUR", line.sku, line.quantity, line.quantity * line.unit_price) for line in listed
    ]
    assert day.other_skus == {
        "EUR": OtherSkus(
            units=sum(line.quantity for line in spilled),
            revenue=sum(line.quantity * line.unit_price for line in spilled),
        )
    }
    assert day.skus_capped
    assert (report.totals.placed_value, report.totals.other_skus) == (
        day.placed_value,
        day.other_skus,
    )
