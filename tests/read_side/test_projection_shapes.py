"""The read side reads what the projections really write: the projections' pure code folds a
series of events into documents, written through the ``DocumentStore`` port (no projector
daemon), and the queries answer from the result. Catches any drift between the
projections' document shapes and the read side's response models."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from projector.projection import EventEnvelope, Projection
from projector.projections.customer_summaries import CustomerSummaries
from projector.projections.daily_sales import DailySales
from projector.projections.order_views import OrderViews
from read_side.bootstrap import build_query_bus
from read_side.queries import GetCustomerSummary, GetDailySales, GetOrder, ListCustomerOrders
from shared.contract.order_events import (
    Address,
    ItemAdded,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    order_stream,
)
from shared.contract.read_models import collection_name
from shared.contract.versioned_events import Event, EventMetadata
from shared.messaging.bus import MessageBus
from shared.messaging.messages import Query
from shared.ports.document_store import DocumentStore, ReplaceOne
from tests.conftest import unique
from tests.projections.history import fold
from tests.read_side.support import set_checkpoint

T0 = datetime(2025, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)
ADDRESS = Address(line1="1 Main Street", city="Dublin", postal_code="D01 F5P2", country="IE")
PROJECTIONS: tuple[type[Projection], ...] = (OrderViews, CustomerSummaries, DailySales)


class History:
    """Events in commit order, each with its global position and stream revision."""

    def __init__(self) -> None:
        self.envelopes: list[EventEnvelope] = []
        self._revisions: dict[uuid.UUID, int] = {}

    def add(self, order_id: uuid.UUID, event: Event, at: datetime) -> None:
        revision = self._revisions.get(order_id, -1) + 1
        self._revisions[order_id] = revision
        self.envelopes.append(
            EventEnvelope(
                event=event,
                metadata=EventMetadata(occurred_at=at),
                event_id=uuid.uuid4(),
                stream=order_stream(order_id),
                revision=revision,
                position=(len(self.envelopes) + 1) * 100,
                recorded_at=at,
            )
        )


@pytest.fixture
async def projected(document_store: DocumentStore) -> tuple[str, uuid.UUID, uuid.UUID, int]:
    """Two orders of one customer: one shipped, one cancelled after placing."""
    customer = unique("cust")
    shipped, cancelled = uuid.uuid4(), uuid.uuid4()
    history = History()
    history.add(
        shipped,
        OrderCreated(
            order_id=shipped, customer_id=customer, currency="EUR", shipping_address=ADDRESS
        ),
        T0,
    )
    history.add(shipped, ItemAdded(order_id=shipped, sku="MUG", quantity=2, unit_price=1250), T0)
    history.add(shipped, ItemAdded(order_id=shipped, sku="CUP.2", quantity=1, unit_price=1500), T0)
    history.add(shipped, ItemAdded(order_id=shipped, sku="MUG", quantity=1, unit_price=1250), T0)
    lines = (
        OrderLine(sku="MUG", quantity=3, unit_price=1250),
        OrderLine(sku="CUP.2", quantity=1, unit_price=1500),
    )
    history.add(
        shipped,
        OrderPlaced(
            order_id=shipped, customer_id=customer, currency="EUR", lines=lines, total=5250
        ),
        T0 + timedelta(minutes=5),
    )
    history.add(
        shipped,
        PaymentReceived(order_id=shipped, customer_id=customer, currency="EUR", amount=5250),
        T0 + timedelta(minutes=6),
    )
    history.add(
        shipped,
        OrderShipped(
            order_id=shipped, customer_id=customer, carrier="DHL", tracking_number="TRK-9"
        ),
        T0 + timedelta(days=1),
    )
    later = T0 + timedelta(hours=1)
    history.add(
        cancelled,
        OrderCreated(
            order_id=cancelled, customer_id=customer, currency="EUR", shipping_address=ADDRESS
        ),
        later,
    )
    history.add(
        cancelled, ItemAdded(order_id=cancelled, sku="MUG", quantity=1, unit_price=1250), later
    )
    history.add(
        cancelled,
        OrderPlaced(
            order_id=cancelled,
            customer_id=customer,
            currency="EUR",
            lines=(OrderLine(sku="MUG", quantity=1, unit_price=1250),),
            total=1250,
        ),
        later,
    )
    history.add(
        cancelled,
        OrderCancelled(
            order_id=cancelled,
            customer_id=customer,
            reason="changed my mind",
            previous_status="placed",
            refund_due=0,
        ),
        later,
    )

    head = history.envelopes[-1].position
    for projection_type in PROJECTIONS:
        projection = projection_type()
        collection = collection_name(projection.name, 1)
        await document_store.ensure_indexes(collection, projection.indexes)
        documents = fold(projection, history.envelopes)
        await document_store.bulk_write(
            collection,
            [ReplaceOne({"_id": key}, doc, upsert=True) for key, doc in documents.items()],
        )
        await set_checkpoint(document_store, projection.name, head)
    return customer, shipped, cancelled, head


@pytest.fixture
def bus(document_store: DocumentStore) -> MessageBus[Query]:
    return build_query_bus(document_store)


async def test_order_views(
    bus: MessageBus[Query], projected: tuple[str, uuid.UUID, uuid.UUID, int]
) -> None:
    customer, shipped_id, cancelled_id, head = projected

    answer = await bus.dispatch(GetOrder(order_id=shipped_id, min_position=head, wait_ms=0))
    assert (answer.position, answer.stale) == (head, False)
    shipped = answer.value
    assert shipped is not None
    assert (shipped.customer_id, shipped.currency, shipped.status) == (customer, "EUR", "shipped")
    assert [(i.sku, i.quantity, i.unit_price, i.line_total) for i in shipped.items] == [
        ("MUG", 3, 1250, 3750),
        ("CUP.2", 1, 1500, 1500),
    ]
    assert (shipped.total, shipped.amount_paid, shipped.outstanding) == (5250, 5250, 0)
    assert (shipped.carrier, shipped.tracking_number, shipped.version) == ("DHL", "TRK-9", 6)
    assert shipped.shipping_address.model_dump() == ADDRESS.model_dump()
    assert shipped.created_at == T0
    assert shipped.shipped_at == T0 + timedelta(days=1) == shipped.updated_at

    cancelled = (await bus.dispatch(GetOrder(order_id=cancelled_id))).value
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancelled_from, cancelled.cancel_reason) == (
        "cancelled",
        "placed",
        "changed my mind",
    )
    assert (cancelled.total, cancelled.outstanding, cancelled.refund_due) == (1250, 0, 0)

    page = (await bus.dispatch(ListCustomerOrders(customer_id=customer))).value
    assert [o.order_id for o in page.items] == [cancelled_id, shipped_id]
    only_shipped = (
        await bus.dispatch(ListCustomerOrders(customer_id=customer, status="shipped"))
    ).value
    assert [o.order_id for o in only_shipped.items] == [shipped_id]


async def test_customer_summary(
    bus: MessageBus[Query], projected: tuple[str, uuid.UUID, uuid.UUID, int]
) -> None:
    customer, _, _, _ = projected
    summary = (await bus.dispatch(GetCustomerSummary(customer_id=customer))).value
    assert summary.orders_by_status == {
        "draft": 0,
        "placed": 0,
        "paid": 0,
        "shipped": 1,
        "cancelled": 1,
    }
    assert (summary.order_count, summary.open_orders) == (2, 0)
    assert summary.lifetime_paid == {"EUR": 5250}
    assert summary.last_order_at == T0 + timedelta(hours=1)


async def test_daily_sales(
    bus: MessageBus[Query], projected: tuple[str, uuid.UUID, uuid.UUID, int]
) -> None:
    report = (
        await bus.dispatch(GetDailySales(from_day=date(2025, 3, 1), to_day=date(2025, 3, 2)))
    ).value
    first, second = report.days
    assert (first.orders_placed, first.placed_value) == (2, {"EUR": 6500})
    assert (first.payments_received, first.revenue) == (1, {"EUR": 5250})
    assert [(s.currency, s.sku, s.units, s.revenue) for s in first.skus] == [
        ("EUR", "CUP.2", 1, 1500),
        ("EUR", "MUG", 4, 5000),
    ]
    assert (second.orders_placed, second.revenue) == (0, {})
    assert report.totals.placed_value == {"EUR": 6500}
