"""Failures: a poison event stops only its projection until parked; outages are waited out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from projector.dead_letters import NothingToPark, list_dead_letters, park_failed_event
from projector.projection import EventEnvelope
from projector.projections import CustomerSummaries, OrderViews
from projector.status import projection_statuses
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.contract.order_events import ItemAdded
from shared.contract.read_models import CHECKPOINTS, resolve_active
from shared.ports.document_store import (
    Document,
    DocumentStore,
    DocumentStoreError,
    WriteOp,
    WriteResult,
)
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import SubscriptionItem
from tests.conftest import unique
from tests.fakes.document_store import DelegatingDocumentStore
from tests.fakes.event_store import InMemoryEventStore
from tests.projector.support import (
    Order,
    append_orders,
    checkpoint,
    random_day,
    running_daemon,
    wait_for_position,
)
from tests.waiting import wait_until

POISON_SKU = "POISON"


class PoisonedSummaries(CustomerSummaries):
    """Customer summaries whose handler raises on one SKU (a bug, or a bad event)."""

    name = "poisoned_summaries"

    def __init__(self) -> None:
        super().__init__()
        self.on(ItemAdded, self._item_added)

    def document_id(self, envelope: EventEnvelope) -> str | None:
        if isinstance(envelope.event, ItemAdded):  # an item changes no summary, but is read
            return str(envelope.event.order_id)
        return super().document_id(envelope)

    def _item_added(self, document: Document | None, envelope: EventEnvelope) -> Document | None:
        event = envelope.event
        assert isinstance(event, ItemAdded)
        if event.sku == POISON_SKU:
            raise ValueError(f"cannot handle {event.sku}")
        return None


async def test_a_poison_event_stops_only_its_projection_until_parked(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    day = random_day()
    before = await append_orders(event_store, [Order(customer)], day)
    poison = Order(customer, "paid", skus=(POISON_SKU, "SKU-2"))
    await append_orders(event_store, [poison], day, interleave=False)
    after = await append_orders(event_store, [Order(customer, "cancelled")], day)
    projections = [OrderViews(), PoisonedSummaries()]

    async with running_daemon(event_store, document_store, projections):
        await wait_for_position(document_store, after, ["order_views"])

        async def failed() -> Any:
            record = await checkpoint(document_store, "poisoned_summaries")
            return record if record is not None and record.state == "failed" else None

        record = await wait_until(failed, "the poisoned projection to fail")
        assert record.failure is not None
        stored = await event_store.read_stream(poison.stream)
        assert record.failure.event_id == stored[1].event_id
        assert record.failure.event_type == "ItemAdded"
        assert record.failure.position == stored[1].position
        assert "cannot handle POISON" in record.failure.error
        assert record.failure.attempts == 3
        assert before <= record.position < record.failure.position

        statuses = {
            s.name: s for s in await projection_statuses(document_store, event_store, projections)
        }
        assert statuses["order_views"].state == "live"
        assert statuses["poisoned_summaries"].state == "failed"
        assert statuses["poisoned_summaries"].error == record.failure
        assert (statuses["poisoned_summaries"].lag_events or 0) > 0

        # Still failed a while later: nothing is skipped on its own.
        more = await append_orders(event_store, [Order(customer)], day)
        await wait_for_position(document_store, more, ["order_views"])
        still = await checkpoint(document_store, "poisoned_summaries")
        assert still is not None and still.state == "failed" and still.position == record.position

        parked = await park_failed_event(document_store, event_store, "poisoned_summaries")
        assert [p.event_id for p in parked] == [record.failure.event_id]
        assert parked[0].data is not None and POISON_SKU in parked[0].data
        await wait_for_position(document_store, more, ["poisoned_summaries"])

    letters = await list_dead_letters(document_store)
    assert [(d.projection, d.event_id) for d in letters] == [
        ("poisoned_summaries", record.failure.event_id)
    ]
    active = await resolve_active(document_store, "poisoned_summaries")
    summary = await document_store.find_one(active.collection, {"_id": customer})
    assert summary is not None and summary["order_count"] == 4
    try:
        await park_failed_event(document_store, event_store, "poisoned_summaries")
    except NothingToPark:
        pass
    else:
        raise AssertionError("parking a healthy projection should fail")


class FlakyEventStore(InMemoryEventStore):
    """An in-memory event store whose subscriptions fail while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def head_position(self, event_types: Sequence[str]) -> int:
        if self.down:
            raise StoreUnavailable("eventstore", "connection refused")
        return await super().head_position(event_types)

    async def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        if self.down:
            raise StoreUnavailable("eventstore", "connection refused")
        async for item in super().subscribe_all(after_position, event_types):
            if self.down:
                raise StoreUnavailable("eventstore", "connection reset")
            yield item


async def test_an_event_store_outage_is_retried_and_visible_in_status(
    document_store: DocumentStore,
) -> None:
    events = FlakyEventStore()
    customer = unique("customer")
    first = await append_orders(events, [Order(customer)], random_day())
    async with running_daemon(events, document_store, [OrderViews()]):
        await wait_for_position(document_store, first, ["order_views"])
        events.down = True
        second = await append_orders(events, [Order(customer)], random_day())

        async def unavailable() -> Any:
            record = await checkpoint(document_store, "order_views")
            return record if record is not None and record.state == "store_unavailable" else None

        record = await wait_until(unavailable, "the outage to show")
        assert record.reason is not None and "eventstore" in record.reason
        status = (await projection_statuses(document_store, events, [OrderViews()]))[0]
        assert status.state == "store_unavailable" and status.head_position is None

        events.down = False
        await wait_for_position(document_store, second, ["order_views"])

        async def live() -> bool:
            record = await checkpoint(document_store, "order_views")
            return record is not None and record.state == "live"

        await wait_until(live, "the projection to be live again")


class FlakyDocumentStore(DelegatingDocumentStore):
    """Writes to read models fail while ``down``."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.down = False
        self.refused = 0

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if self.down and collection != CHECKPOINTS:
            self.refused += 1
            raise StoreUnavailable("mongodb", "connection refused")
        return await self.inner.bulk_write(collection, ops)


async def test_a_mongodb_outage_skips_nothing(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    flaky = FlakyDocumentStore(document_store)
    customer = unique("customer")
    first = await append_orders(event_store, [Order(customer)], random_day())
    async with running_daemon(event_store, flaky, [OrderViews()]):
        await wait_for_position(document_store, first, ["order_views"])
        flaky.down = True
        orders = [Order(customer, "cancelled") for _ in range(5)]
        last = await append_orders(event_store, orders, random_day())
        await wait_until(lambda: _true_if(flaky.refused >= 3), "writes to be refused")
        stuck = await checkpoint(document_store, "order_views")
        assert stuck is not None and stuck.position < last
        flaky.down = False
        await wait_for_position(document_store, last, ["order_views"])

    active = await resolve_active(document_store, "order_views")
    for order in orders:
        view = await document_store.find_one(active.collection, {"_id": str(order.order_id)})
        assert view is not None and view["status"] == "cancelled"


async def _true_if(condition: bool) -> bool:
    return condition


class RefusingDocumentStore(DelegatingDocumentStore):
    """Reads of one projection's documents are refused while ``refusing`` (as embedded-mongo
    refused a ``$in`` of 496 ids: not an outage, not an event's fault)."""

    def __init__(self, inner: DocumentStore, prefix: str) -> None:
        super().__init__(inner)
        self.prefix = prefix
        self.refusing = True
        self.refused = 0

    def before_read(self, collection: str) -> None:
        if self.refusing and collection.startswith(self.prefix):
            self.refused += 1
            raise DocumentStoreError(collection, "Expression tree is too large")


async def test_a_projection_mongodb_refuses_is_failing_and_retried_while_others_carry_on(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    refusing = RefusingDocumentStore(document_store, "customer_summaries_")
    customer = unique("customer")
    orders = [Order(customer, "cancelled") for _ in range(3)]
    async with running_daemon(event_store, refusing, [OrderViews(), CustomerSummaries()]) as daemon:
        last = await append_orders(event_store, orders, random_day())
        # The other projection carries on to the head.
        await wait_for_position(document_store, last, ["order_views"])

        async def failing() -> Any:
            record = await checkpoint(document_store, "customer_summaries")
            return record if record is not None and record.state == "failing" else None

        record = await wait_until(failing, "customer_summaries to be failing")
        assert record.reason is not None and "Expression tree is too large" in record.reason
        assert record.failure is None and record.position < last
        [summaries] = await projection_statuses(document_store, event_store, [CustomerSummaries()])
        assert summaries.state == "failing" and summaries.reason == record.reason
        # Retried with backoff, never given up: the daemon is still running.
        await wait_until(lambda: _true_if(refusing.refused >= 3), "retries")
        assert not daemon.done()

        refusing.refusing = False
        await wait_for_position(document_store, last, ["customer_summaries"])

        async def live() -> Any:
            record = await checkpoint(document_store, "customer_summaries")
            return record if record is not None and record.state == "live" else None

        recovered = await wait_until(live, "customer_summaries to be live again")
        assert recovered.reason is None
    active = await resolve_active(document_store, "customer_summaries")
    summary = await document_store.find_one(active.collection, {"_id": customer})
    assert summary is not None and summary["orders_by_status"]["cancelled"] == len(orders)
