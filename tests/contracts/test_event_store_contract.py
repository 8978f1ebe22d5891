"""One contract for the event store port, run against every implementation.

Subclasses provide the ``store`` fixture only. The in-memory fake and the esdbclient adapter
(over embedded-eventstore, or a real EventStoreDB when EVENTSTORE_URI is set) must agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import (
    ANY,
    NO_STREAM,
    CaughtUp,
    Checkpoint,
    ConcurrencyError,
    EventStore,
    NewEvent,
    RecordedEvent,
    StreamNotFound,
)
from tests.conftest import unique
from tests.fakes.event_store import InMemoryEventStore
from tests.misbehaving_servers import garbage_server, silent_server

TIMEOUT_S = 10.0


def new_event(kind: str = "Tested", n: int = 0) -> NewEvent:
    return NewEvent(uuid.uuid4(), kind, f'{{"n": {n}}}'.encode(), b'{"schema_version": 1}')


async def collect_until(
    items: AsyncIterator[object],
    done: Callable[[list[RecordedEvent]], bool],
) -> tuple[list[RecordedEvent], list[object]]:
    events: list[RecordedEvent] = []
    others: list[object] = []

    async def run() -> None:
        async for item in items:
            if isinstance(item, RecordedEvent):
                events.append(item)
                if done(events):
                    return
            else:
                others.append(item)

    await asyncio.wait_for(run(), TIMEOUT_S)
    return events, others


class EventStoreContract:
    """What every EventStore implementation promises."""

    async def test_read_missing_stream_raises_stream_not_found(self, store: EventStore) -> None:
        with pytest.raises(StreamNotFound):
            await store.read_stream(unique("missing"))

    async def test_append_then_read_in_revision_order_from_zero(self, store: EventStore) -> None:
        stream = unique("contract")
        first = await store.append(stream, NO_STREAM, [new_event(n=0), new_event(n=1)])
        second = await store.append(stream, first.revision, [new_event(n=2)])
        assert (first.revision, second.revision) == (1, 2)
        assert second.position > first.position
        events = await store.read_stream(stream)
        assert [e.revision for e in events] == [0, 1, 2]
        assert [e.data for e in events] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
        assert events[-1].position == second.position
        assert all(e.stream == stream and e.type == "Tested" for e in events)
        assert events[0].metadata == b'{"schema_version": 1}'

    async def test_positions_strictly_increase_per_event(self, store: EventStore) -> None:
        stream = unique("contract")
        await store.append(stream, NO_STREAM, [new_event(n=i) for i in range(5)])
        positions = [e.position for e in await store.read_stream(stream)]
        assert positions == sorted(set(positions))

    async def test_wrong_expected_revision_raises_concurrency_error(
        self, store: EventStore
    ) -> None:
        stream = unique("contract")
        await store.append(stream, NO_STREAM, [new_event()])
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(stream, 5, [new_event()])
        assert caught.value.actual == 0
        with pytest.raises(ConcurrencyError):
            await store.append(stream, NO_STREAM, [new_event()])
        assert len(await store.read_stream(stream)) == 1

    async def test_exact_revision_on_missing_stream_is_a_conflict(self, store: EventStore) -> None:
        with pytest.raises(ConcurrencyError):
            await store.append(unique("contract"), 0, [new_event()])

    async def test_same_event_ids_at_same_revision_append_once(self, store: EventStore) -> None:
        stream = unique("contract")
        await store.append(stream, NO_STREAM, [new_event()])
        batch = [new_event(n=1), new_event(n=2)]
        original = await store.append(stream, 0, batch)
        repeat = await store.append(stream, 0, batch)
        assert repeat == original
        assert len(await store.read_stream(stream)) == 3

    async def test_any_appends_and_reports_revision(self, store: EventStore) -> None:
        stream = unique("contract")
        await store.append(stream, ANY, [new_event()])
        result = await store.append(stream, ANY, [new_event(), new_event()])
        assert result.revision == 2

    async def test_concurrent_appends_at_one_revision_one_wins(self, store: EventStore) -> None:
        stream = unique("contract")
        await store.append(stream, NO_STREAM, [new_event()])
        outcomes = await asyncio.gather(
            *(store.append(stream, 0, [new_event(n=i)]) for i in range(10)),
            return_exceptions=True,
        )
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert all(isinstance(o, ConcurrencyError) for o in outcomes if isinstance(o, Exception))
        assert len(await store.read_stream(stream)) == 2

    async def test_subscribe_all_filters_types_and_is_exclusive(self, store: EventStore) -> None:
        kind = "Kind" + uuid.uuid4().hex[:12]
        other = "Other" + uuid.uuid4().hex[:12]
        stream = unique("contract")
        first = await store.append(stream, NO_STREAM, [new_event(kind, 0)])
        await store.append(stream, 0, [new_event(other, 1), new_event(kind, 2)])
        events, _ = await collect_until(
            store.subscribe_all(None, [kind]), lambda got: len(got) >= 2
        )
        assert [e.data for e in events] == [b'{"n": 0}', b'{"n": 2}']
        after, _ = await collect_until(
            store.subscribe_all(first.position, [kind]), lambda got: len(got) >= 1
        )
        assert after[0].data == b'{"n": 2}'

    async def test_subscribe_all_catches_up_then_goes_live(self, store: EventStore) -> None:
        kind = "Kind" + uuid.uuid4().hex[:12]
        stream = unique("contract")
        await store.append(stream, NO_STREAM, [new_event(kind, 0)])
        items = store.subscribe_all(None, [kind])
        caught_up = asyncio.Event()
        seen: list[object] = []

        async def consume() -> None:
            async for item in items:
                seen.append(item)
                if isinstance(item, CaughtUp):
                    caught_up.set()
                if sum(isinstance(i, RecordedEvent) for i in seen) == 2:
                    return

        task = asyncio.create_task(consume())
        await asyncio.wait_for(caught_up.wait(), TIMEOUT_S)
        await store.append(stream, 0, [new_event(kind, 1)])
        await asyncio.wait_for(task, TIMEOUT_S)
        kinds = [type(i) for i in seen if not isinstance(i, Checkpoint)]
        assert kinds == [RecordedEvent, CaughtUp, RecordedEvent]

    async def test_head_position_is_newest_matching_event(self, store: EventStore) -> None:
        kind = "Kind" + uuid.uuid4().hex[:12]
        assert await store.head_position([kind]) == 0
        result = await store.append(unique("contract"), NO_STREAM, [new_event(kind)])
        await store.append(unique("contract"), NO_STREAM, [new_event("Unrelated")])
        assert await store.head_position([kind]) == result.position


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> EventStore:
        return InMemoryEventStore()


class TestEsdbEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, esdb_event_store: EsdbEventStore) -> EventStore:
        return esdb_event_store

    async def test_unreachable_server_raises_store_unavailable(self) -> None:
        adapter = EsdbEventStore("esdb://127.0.0.1:1?Tls=false", retry_budget_s=0.5)
        await adapter.connect()
        try:
            with pytest.raises(StoreUnavailable):
                await adapter.append(unique("contract"), NO_STREAM, [new_event()])
            with pytest.raises(StoreUnavailable):
                await adapter.ping()
        finally:
            await adapter.close()

    @pytest.mark.parametrize("misbehaving", [garbage_server, silent_server])
    async def test_a_server_answering_garbage_or_nothing_is_unavailable_within_the_budget(
        self, misbehaving: Callable[[], contextlib.AbstractAsyncContextManager[int]]
    ) -> None:
        # Every operation ends, and ends as StoreUnavailable: never a hang, never another
        # exception, never a made-up answer (esdbclient turns a cut read into an empty one).
        async with misbehaving() as port:
            adapter = EsdbEventStore(f"esdb://127.0.0.1:{port}?Tls=false", retry_budget_s=0.5)
            await adapter.connect()
            operations: list[Callable[[], Awaitable[object]]] = [
                adapter.ping,
                lambda: adapter.append(unique("contract"), NO_STREAM, [new_event()]),
                lambda: adapter.read_stream(unique("contract")),
                lambda: adapter.head_position(["Anything"]),
                lambda: anext(aiter(adapter.subscribe_all(None, ["Anything"]))),
            ]
            try:
                for operation in operations:
                    with pytest.raises(StoreUnavailable):
                        # A bound on failing only: the adapter's own budget is 0.5 s.
                        async with asyncio.timeout(TIMEOUT_S):
                            await operation()
            finally:
                await adapter.close()
