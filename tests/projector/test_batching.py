"""Batching and dispatch rules, without servers."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from projector.batching import Batch, SubscriptionDropped, SubscriptionPump, batches
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.failures import write_or_find_culprit
from projector.fold import HANDLER_ATTEMPTS
from projector.metrics import ProjectorMetrics
from projector.progress import estimated_total_events, log_fraction
from projector.projection import EventEnvelope, Projection
from shared.contract.order_events import ItemRemoved, build_order_event_registry
from shared.contract.versioned_events import EventMetadata, EventRegistry
from shared.ports.document_store import (
    Document,
    DocumentStoreError,
    ReplaceOne,
    WriteOp,
    WriteResult,
)
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import CaughtUp, Checkpoint, RecordedEvent, SubscriptionItem
from tests.waiting import wait_until

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def recorded(position: int, event_type: str = "ItemRemoved", sku: str = "A") -> RecordedEvent:
    event = ItemRemoved(order_id=uuid.uuid4(), sku=sku)
    return RecordedEvent(
        event_id=uuid.uuid4(),
        stream=f"order-{event.order_id}",
        revision=0,
        position=position,
        type=event_type,
        data=EventRegistry.serialize(event),
        metadata=EventMetadata().to_json(),
        recorded_at=NOW,
    )


class Feed:
    """A subscription the test feeds by hand."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SubscriptionItem | Exception] = asyncio.Queue()
        self.closed = False

    async def items(self) -> AsyncIterator[SubscriptionItem]:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True


async def take(stream: AsyncIterator[Batch]) -> Batch:
    return await asyncio.wait_for(anext(stream), 5)


async def test_batches_close_on_size_caught_up_time_and_stop() -> None:
    feed = Feed()
    stop = asyncio.Event()
    for position in range(1, 6):
        feed.queue.put_nowait(recorded(position))
    async with SubscriptionPump(feed.items(), 10) as pump:
        stream = batches(pump, size=3, linger_s=0.05, idle_s=0.05, stop=stop)
        first = await take(stream)
        assert [e.position for e in first.events] == [1, 2, 3]
        second = await take(stream)  # two events, then the time limit
        assert [e.position for e in second.events] == [4, 5]
        idle = await take(stream)
        assert idle.empty
        feed.queue.put_nowait(recorded(6))
        feed.queue.put_nowait(Checkpoint(position=9))
        feed.queue.put_nowait(CaughtUp())
        third = await take(stream)  # caught up closes the batch at once
        assert (len(third.events), third.checkpoint, third.caught_up) == (1, 9, True)
        assert third.last_position == 9
    assert feed.closed


class WatchedPump(SubscriptionPump):
    """Tells when the batcher has taken an item (a batch is open)."""

    def __init__(self, items: AsyncIterator[SubscriptionItem], capacity: int) -> None:
        super().__init__(items, capacity)
        self.handed = asyncio.Event()

    async def next(
        self, wait_s: float, stop: asyncio.Event, wake: asyncio.Event | None = None
    ) -> SubscriptionItem | None:
        item = await super().next(wait_s, stop, wake)
        if item is not None:
            self.handed.set()
        return item


async def test_stop_hands_over_the_batch_in_hand_at_once() -> None:
    feed = Feed()
    stop = asyncio.Event()
    feed.queue.put_nowait(recorded(10))
    async with WatchedPump(feed.items(), 10) as pump:
        # A batch would wait a minute for more events; the stop request cuts that short.
        stream = batches(pump, size=100, linger_s=60, idle_s=60, stop=stop)
        pending = asyncio.ensure_future(take(stream))
        await asyncio.wait_for(pump.handed.wait(), 5)
        stop.set()
        batch = await pending
        assert [e.position for e in batch.events] == [10]
        with pytest.raises(StopAsyncIteration):
            await take(stream)


async def test_a_wake_up_ends_an_idle_wait_with_an_empty_batch_and_the_stream_goes_on() -> None:
    feed = Feed()
    stop, wake = asyncio.Event(), asyncio.Event()
    async with SubscriptionPump(feed.items(), 10) as pump:
        # Idle for an hour unless woken: the caller has something to act on between batches.
        stream = batches(pump, size=100, idle_s=3600, stop=stop, wake=wake)
        pending = asyncio.ensure_future(take(stream))
        wake.set()
        assert (await pending).empty
        wake.clear()
        feed.queue.put_nowait(recorded(4))
        assert [e.position for e in (await take(stream)).events] == [4]


async def test_a_batch_takes_what_is_ready_and_goes_without_lingering() -> None:
    feed = Feed()
    stop = asyncio.Event()
    for position in range(1, 8):
        feed.queue.put_nowait(recorded(position))
    async with SubscriptionPump(feed.items(), 10) as pump:
        # No linger, and an hour before an idle batch: only what is ready makes a batch.
        stream = batches(pump, size=5, linger_s=0, idle_s=3600, stop=stop)
        first = await take(stream)
        assert [e.position for e in first.events] == [1, 2, 3, 4, 5]  # capped at the size
        second = await take(stream)
        assert [e.position for e in second.events] == [6, 7]  # the rest, without waiting
        feed.queue.put_nowait(recorded(8))
        lone = await take(stream)  # an event alone goes at once
        assert [e.position for e in lone.events] == [8]


async def test_batches_grow_while_the_last_one_is_being_written() -> None:
    feed = Feed()
    stop = asyncio.Event()
    feed.queue.put_nowait(recorded(1))
    async with SubscriptionPump(feed.items(), 10) as pump:
        stream = batches(pump, size=100, linger_s=0, idle_s=3600, stop=stop)
        first = await take(stream)
        assert [e.position for e in first.events] == [1]
        # While the runner writes the first batch, the subscription delivers five more events.
        for position in range(2, 7):
            feed.queue.put_nowait(recorded(position))

        async def queued() -> bool:
            return pump.ready == 5

        await wait_until(queued, "the reader to queue the events delivered meanwhile")
        second = await take(stream)
        assert [e.position for e in second.events] == [2, 3, 4, 5, 6]


async def test_a_linger_waits_after_the_first_event_for_more() -> None:
    feed = Feed()
    stop = asyncio.Event()
    feed.queue.put_nowait(recorded(1))
    async with WatchedPump(feed.items(), 10) as pump:
        # Lingering a minute: the batch closes on its size, once the later events arrive.
        stream = batches(pump, size=3, linger_s=60, idle_s=3600, stop=stop)
        pending = asyncio.ensure_future(take(stream))
        await asyncio.wait_for(pump.handed.wait(), 5)
        assert not pending.done()
        feed.queue.put_nowait(recorded(2))
        feed.queue.put_nowait(recorded(3))
        batch = await pending
        assert [e.position for e in batch.events] == [1, 2, 3]


async def test_a_failing_subscription_surfaces_as_dropped() -> None:
    feed = Feed()
    feed.queue.put_nowait(RuntimeError("connection reset"))
    async with SubscriptionPump(feed.items(), 10) as pump:
        stream = batches(pump, size=3, linger_s=0.05, idle_s=0.05, stop=asyncio.Event())
        with pytest.raises(SubscriptionDropped, match="connection reset"):
            await take(stream)


class Flaky(Projection):
    name = "flaky"

    def __init__(self, fail_sku: str) -> None:
        super().__init__()
        self.fail_sku = fail_sku
        self.calls = 0
        self.on(ItemRemoved, self._removed)

    def document_id(self, envelope: EventEnvelope) -> str | None:
        event = envelope.event
        assert isinstance(event, ItemRemoved)
        return event.sku

    def _removed(self, document: Document | None, envelope: EventEnvelope) -> Document | None:
        self.calls += 1
        event = envelope.event
        assert isinstance(event, ItemRemoved)
        if event.sku == self.fail_sku:
            raise ValueError("boom")
        return {"removed": event.sku}


class NoStore:
    """Finds nothing (every document is new); every write takes effect."""

    async def find_by_ids(self, collection: str, ids: Any) -> list[Any]:
        return []

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        return WriteResult(changed=len(ops))


def dispatcher() -> Dispatcher:
    return Dispatcher(NoStore(), build_order_event_registry(), lambda: NOW)  # type: ignore[arg-type]


async def test_events_at_or_below_the_checkpoint_are_skipped_and_checkpoints_advance() -> None:
    target = Target(Flaky("never"), 1, position=20)
    batch = Batch([recorded(10), recorded(20), recorded(30), recorded(40, "OrderShipped")])
    batch.checkpoint = 55
    [plan] = await dispatcher().apply(batch, [target], {})
    assert [item.event.position for item in plan.applied] == [30]
    assert plan.outcome.position == 55
    assert target.position == 20  # nothing changes before the runner saved it


async def test_a_failing_handler_stops_its_target_before_the_event() -> None:
    projection = Flaky("BAD")
    target = Target(projection, 1, position=0)
    batch = Batch([recorded(10), recorded(20, sku="BAD"), recorded(30)])
    batch.checkpoint = 99
    [plan] = await dispatcher().apply(batch, [target], {})
    assert [item.event.position for item in plan.applied] == [10]
    failure = plan.outcome.failure
    assert failure is not None and failure.position == 20 and "boom" in failure.error
    assert failure.event_id == batch.events[1].event_id and failure.attempts == HANDLER_ATTEMPTS
    assert plan.outcome.position == 10 and plan.outcome.state == "failed"
    assert projection.calls == 1 + HANDLER_ATTEMPTS


async def test_a_parked_event_is_skipped_when_it_still_fails() -> None:
    target = Target(Flaky("BAD"), 1, position=0)
    batch = Batch([recorded(10), recorded(20, sku="BAD"), recorded(30)])
    [plan] = await dispatcher().apply(
        batch, [target], {"flaky": frozenset({batch.events[1].event_id})}
    )
    assert [item.event.position for item in plan.applied] == [10, 30]
    assert plan.outcome.failure is None and plan.outcome.position == 30


async def test_an_unreadable_event_fails_the_targets_that_handle_it() -> None:
    target = Target(Flaky("never"), 1, position=0)
    broken = dataclasses.replace(recorded(10), data=b"{not json")
    [plan] = await dispatcher().apply(Batch([broken]), [target], {})
    assert plan.outcome.failure is not None
    assert plan.outcome.failure.error.startswith("cannot read event")


def test_progress_estimates_events_from_position_density() -> None:
    assert log_fraction(50, 0, 200) == 0.25
    assert log_fraction(10, 0, 0) == 1.0
    assert estimated_total_events(0, 0, 0, 100) is None
    assert estimated_total_events(100, 250, 0, 1000) == 400
    assert estimated_total_events(100, 1000, 0, 900) == 100


def test_metrics_follow_batches_and_outages() -> None:
    metrics = ProjectorMetrics()
    target = Target(Flaky("x"), 2, position=7)
    metrics.batch(Batch([recorded(5), recorded(7)]), [target])
    metrics.outage("eventstore unavailable")
    value = metrics.registry.get_sample_value
    assert value("projector_events_total") == 2
    assert value("projector_checkpoint_position", {"projection": "flaky", "version": "2"}) == 7
    assert value("projector_stores_available") == 0


class RejectingStore:
    """Records bulk writes; rejects any batch holding an operation on document "bad"."""

    def __init__(self, outage: bool = False) -> None:
        self.written: list[object] = []
        self.outage = outage

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if self.outage:
            raise StoreUnavailable("mongodb", "connection refused")
        if any(isinstance(op, ReplaceOne) and op.filter["_id"] == "bad" for op in ops):
            raise DocumentStoreError(collection, "E11000 something MongoDB refuses")
        self.written.extend(op.filter["_id"] for op in ops if isinstance(op, ReplaceOne))
        return WriteResult(changed=len(ops))


def op(document_id: str) -> WriteOp:
    return ReplaceOne({"_id": document_id}, {"x": 1}, upsert=True)


async def test_a_rejected_write_is_pinned_on_its_event() -> None:
    store = RejectingStore()
    groups = [[op("a")], [], [op("bad")], [op("c")]]
    final = [op("a"), op("bad"), op("c")]
    written = await write_or_find_culprit(store, "c", final, lambda: groups)  # type: ignore[arg-type]
    culprit = written.culprit
    assert culprit is not None and culprit[0] == 2 and "refuses" in culprit[1]
    assert store.written == ["a"] and written.complete


async def test_the_batch_is_written_at_once_when_it_can_be() -> None:
    store = RejectingStore()

    def by_event() -> list[list[WriteOp]]:
        raise AssertionError("only needed to find a culprit")

    written = await write_or_find_culprit(store, "c", [op("a"), op("c")], by_event)  # type: ignore[arg-type]
    assert written.culprit is None and written.complete
    assert store.written == ["a", "c"]


async def test_an_outage_is_not_blamed_on_an_event() -> None:
    with pytest.raises(StoreUnavailable):
        await write_or_find_culprit(
            RejectingStore(outage=True), "c", [op("a")], lambda: [[op("a")]]
        )  # type: ignore[arg-type]


class BrokenStore:
    """A store whose writes fail with an error that is not MongoDB refusing a document."""

    def __init__(self) -> None:
        self.writes = 0

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        self.writes += 1
        raise RuntimeError("a bug in the adapter")


async def test_an_error_other_than_a_refused_document_is_not_blamed_on_an_event() -> None:
    store = BrokenStore()
    with pytest.raises(RuntimeError, match="a bug in the adapter"):
        await write_or_find_culprit(store, "c", [op("a")], lambda: [[op("a")]])  # type: ignore[arg-type]
    assert store.writes == 1  # neither retried nor written again event by event
