"""The daemon against embedded-eventstore and embedded-mongo: documents, restart, re-delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from projector.projection import EventEnvelope
from projector.projections import CustomerSummaries, OrderViews
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.contract.read_models import CHECKPOINTS, REGISTRY, resolve_active
from shared.ports.document_store import Document, DocumentStore, UpdateOne
from shared.ports.event_store import ANY, NewEvent, SubscriptionItem
from tests.conftest import unique
from tests.projector.support import (
    Order,
    append_orders,
    checkpoint,
    new_event,
    random_day,
    running_daemon,
    wait_for_position,
)
from tests.waiting import wait_until


class RecordingEventStore(EsdbEventStore):
    """Records where each subscription started."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.subscribed_after: list[int | None] = []

    def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        self.subscribed_after.append(after_position)
        return super().subscribe_all(after_position, event_types)


async def read_all(store: DocumentStore, name: str) -> dict[str, dict[str, Any]]:
    active = await resolve_active(store, name)
    return {doc["_id"]: doc for doc in await store.find(active.collection, {})}


async def test_builds_the_documents_the_events_imply(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    day = random_day()
    orders = [Order(customer, ending) for ending in ("draft", "paid", "shipped", "cancelled")]
    last = await append_orders(event_store, orders, day)

    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, last)

    views = await read_all(document_store, "order_views")
    draft, paid, shipped, cancelled = (views[str(o.order_id)] for o in orders)
    assert draft["status"] == "draft"
    assert [(i["sku"], i["quantity"], i["line_total"]) for i in draft["items"]] == [
        ("SKU-1", 2, 1000),
        ("SKU-2", 1, 1250),
    ]
    assert draft["total"] == 2250
    assert (paid["status"], paid["total"], paid["amount_paid"], paid["outstanding"]) == (
        "paid",
        1000,
        1000,
        0,
    )
    assert shipped["status"] == "shipped" and shipped["tracking_number"] == "T1"
    assert cancelled["status"] == "cancelled" and cancelled["refund_due"] == 1000
    assert shipped["version"] == 6

    summary = (await read_all(document_store, "customer_summaries"))[customer]
    assert summary["order_count"] == 4
    assert summary["orders_by_status"] == {
        "draft": 1,
        "placed": 0,
        "paid": 1,
        "shipped": 1,
        "cancelled": 1,
    }
    assert summary["open_orders"] == 2
    assert summary["lifetime_paid"] == {"EUR": 3000}

    sales = (await read_all(document_store, "daily_sales"))[day.date().isoformat()]
    assert (sales["orders_placed"], sales["payments_received"]) == (3, 3)
    assert sales["revenue"] == {"EUR": 3000}

    registry = await document_store.find(REGISTRY, {})
    assert {(d["_id"], d["active_version"]) for d in registry} == {
        ("order_views", 1),
        ("customer_summaries", 1),
        ("daily_sales", 1),
    }
    for name in ("order_views", "customer_summaries", "daily_sales"):
        record = await checkpoint(document_store, name)
        assert record is not None and record.state == "stopped" and record.position >= last


async def test_restart_resumes_from_the_checkpoint(
    eventstore_uri: str, document_store: DocumentStore
) -> None:
    events = RecordingEventStore(eventstore_uri)
    await events.connect()
    try:
        customer = unique("customer")
        first = await append_orders(events, [Order(customer)], random_day())
        async with running_daemon(events, document_store, [OrderViews()]):
            await wait_for_position(document_store, first, ["order_views"])
        saved = await checkpoint(document_store, "order_views")
        assert saved is not None and saved.position >= first

        later = Order(customer, "cancelled")
        second = await append_orders(events, [later], random_day())
        events.subscribed_after.clear()
        async with running_daemon(events, document_store, [OrderViews()]):
            await wait_for_position(document_store, second, ["order_views"])

        assert events.subscribed_after[0] == saved.position
        views = await read_all(document_store, "order_views")
        assert views[str(later.order_id)]["status"] == "cancelled"
    finally:
        await events.close()


async def test_redelivered_events_change_nothing(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    day = random_day()
    orders = [Order(customer, ending) for ending in ("paid", "shipped", "cancelled")]
    last = await append_orders(event_store, orders, day)
    names = ["order_views", "customer_summaries", "daily_sales"]
    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, last)
    before = {name: await read_all(document_store, name) for name in names}

    # A crash between the writes and the checkpoint: every event comes again.
    for name in names:
        record = await checkpoint(document_store, name)
        assert record is not None
        await document_store.bulk_write(
            CHECKPOINTS, [UpdateOne({"_id": f"{name}_v1"}, {"$set": {"position": 0}})]
        )
    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, last)

    after = {name: await read_all(document_store, name) for name in names}
    assert after == before


class CountingOrderViews(OrderViews):
    """Order views that count the events they are asked to apply."""

    def __init__(self) -> None:
        super().__init__()
        self.positions: list[int] = []

    def apply(self, document: Document | None, envelope: EventEnvelope) -> Document | None:
        self.positions.append(envelope.position)
        return super().apply(document, envelope)


class LateSummaries(CustomerSummaries):
    """A projection added after the others ran for a while."""

    name = "late_summaries"


async def test_a_new_projection_starts_from_the_beginning_while_others_carry_on(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    early = await append_orders(event_store, [Order(customer), Order(customer)], random_day())
    async with running_daemon(event_store, document_store, [OrderViews()]):
        await wait_for_position(document_store, early, ["order_views"])
    saved = await checkpoint(document_store, "order_views")
    assert saved is not None

    views = CountingOrderViews()
    async with running_daemon(event_store, document_store, [views, LateSummaries()]):
        await wait_for_position(document_store, early, ["late_summaries"])
        later = Order(customer, "cancelled")
        last = await append_orders(event_store, [later], random_day())
        await wait_for_position(document_store, last, ["order_views", "late_summaries"])

    assert all(p > saved.position for p in views.positions), "order_views re-applied old events"
    assert str(later.order_id) in await read_all(document_store, "order_views")
    summary = (await read_all(document_store, "late_summaries"))[customer]
    assert summary["order_count"] == 3


async def test_checkpoints_advance_on_server_checkpoints_without_our_events(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    """Other event types do not reach the projector, but its checkpoint still moves past them
    (filter checkpoints), so a restart does not rescan them."""
    start = await append_orders(event_store, [Order(unique("customer"))], random_day())
    async with running_daemon(event_store, document_store, [OrderViews()]):
        await wait_for_position(document_store, start, ["order_views"])
        stream = unique("other")
        last = 0
        for _ in range(4):
            batch = [
                NewEvent(e.event_id, "SomethingElse", e.data, e.metadata)
                for e in [new_event(Order("x").events()[0], random_day()) for _ in range(100)]
            ]
            last = (await event_store.append(stream, ANY, batch)).position

        async def moved() -> bool:
            record = await checkpoint(document_store, "order_views")
            return record is not None and record.position > start + (last - start) // 2

        await wait_until(moved, "the checkpoint to move past other services' events")
