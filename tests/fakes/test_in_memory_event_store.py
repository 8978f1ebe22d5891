"""What the in-memory store does beyond the shared contract suite (tests/contracts/)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import (
    ANY,
    NO_STREAM,
    CaughtUp,
    Checkpoint,
    ConcurrencyError,
    NewEvent,
    RecordedEvent,
)
from tests.fakes.event_store import CHECKPOINT_EVERY, InMemoryEventStore


def event(kind: str = "Tested") -> NewEvent:
    return NewEvent(uuid.uuid4(), kind, b"{}", b"{}")


async def test_any_re_append_of_stored_ids_writes_nothing() -> None:
    store = InMemoryEventStore()
    batch = [event(), event()]
    original = await store.append("s", ANY, batch)
    await store.append("s", ANY, [event()])
    assert await store.append("s", ANY, batch) == original
    with pytest.raises(ConcurrencyError):
        await store.append("s", ANY, [batch[0], event()])  # only partly stored
    assert len(await store.read_stream("s")) == 3


async def test_no_stream_re_append_of_the_first_events_returns_the_original() -> None:
    store = InMemoryEventStore()
    batch = [event(), event()]
    original = await store.append("s", NO_STREAM, batch)
    await store.append("s", 1, [event()])
    assert await store.append("s", NO_STREAM, batch) == original
    with pytest.raises(ConcurrencyError):
        await store.append("s", NO_STREAM, [*batch, event(), event()])  # runs past the end


async def test_checkpoints_come_every_window_of_scanned_events() -> None:
    store = InMemoryEventStore()
    wanted = "Wanted"
    await store.append("s", NO_STREAM, [event("Other") for _ in range(CHECKPOINT_EVERY * 2)])
    await store.append("t", NO_STREAM, [event(wanted)])
    items: list[object] = []
    async for item in store.subscribe_all(None, [wanted]):
        items.append(item)
        if isinstance(item, CaughtUp):
            break
    stored = await store.read_stream("s")
    assert items[:2] == [
        Checkpoint(stored[CHECKPOINT_EVERY - 1].position),
        Checkpoint(stored[-1].position),
    ]
    assert isinstance(items[2], RecordedEvent) and isinstance(items[3], CaughtUp)


async def test_unavailable_store_fails_every_operation() -> None:
    store = InMemoryEventStore()
    store.unavailable = True
    with pytest.raises(StoreUnavailable):
        await store.append("s", ANY, [event()])
    with pytest.raises(StoreUnavailable):
        await store.read_stream("s")
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_a_live_subscriber_wakes_for_each_append() -> None:
    store = InMemoryEventStore()
    got: list[RecordedEvent] = []
    caught_up = asyncio.Event()

    async def consume() -> None:
        async for item in store.subscribe_all(None, ["Tested"]):
            if isinstance(item, CaughtUp):
                caught_up.set()
            elif isinstance(item, RecordedEvent):
                got.append(item)
                if len(got) == 2:
                    return

    task = asyncio.create_task(consume())
    await asyncio.wait_for(caught_up.wait(), 5)
    await store.append("s", ANY, [event()])
    await store.append("s", ANY, [event()])
    await asyncio.wait_for(task, 5)
    assert [e.revision for e in got] == [0, 1]
