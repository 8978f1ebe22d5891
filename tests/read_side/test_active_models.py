"""Resolving active versions in shared rounds: queries that arrive while a round reads join the
next one, which costs the same two reads however many joined; each query is answered by a round
that began after it arrived; a failed round fails its queries, and a query that leaves does not
take the round with it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from read_side.active_models import ActiveModels
from read_side.consistency import ReadModels
from shared.contract.read_models import (
    CHECKPOINTS,
    CUSTOMER_SUMMARIES,
    DAILY_SALES,
    ORDER_VIEWS,
    REGISTRY,
    ActiveReadModel,
    collection_name,
)
from shared.ports.document_store import Document, DocumentStore
from shared.ports.errors import StoreUnavailable
from tests.fakes.document_store import DelegatingDocumentStore
from tests.read_side.support import WAIT_S, ObservedWatcher, activate, set_checkpoint


class HeldStore(DelegatingDocumentStore):
    """Counts reads by collection; a read of ``hold`` is made, then held until ``release``."""

    def __init__(self, inner: DocumentStore, hold: str) -> None:
        super().__init__(inner)
        self.hold = hold
        self.reads: Counter[str] = Counter()
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.down = False

    def before_read(self, collection: str) -> None:
        self.reads[collection] += 1
        if self.down:
            raise StoreUnavailable("mongodb", "connection refused")

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        found = await super().find_by_ids(collection, ids)
        if collection == self.hold and not self.release.is_set():
            self.holding.set()
            await self.release.wait()
        return found


async def held_first_round(
    document_store: DocumentStore, hold: str
) -> tuple[HeldStore, ActiveModels, asyncio.Task[ActiveReadModel]]:
    """Order views at 10, and a first query whose round is held in its read of ``hold``."""
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    store = HeldStore(document_store, hold=hold)
    active = ActiveModels(store)
    first = asyncio.create_task(active.resolve(ORDER_VIEWS))
    async with asyncio.timeout(WAIT_S):
        await store.holding.wait()
    return store, active, first


async def joined(*tasks: asyncio.Task[ActiveReadModel]) -> None:
    """Let newly created tasks run up to their first wait (one pass of the event loop)."""
    await asyncio.sleep(0)
    assert not any(task.done() for task in tasks)


async def test_queries_arriving_during_a_round_share_the_next_one(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 20)
    store, active, first = await held_first_round(document_store, REGISTRY)

    names = [ORDER_VIEWS, CUSTOMER_SUMMARIES, DAILY_SALES] * 10
    later = [asyncio.create_task(active.resolve(name)) for name in names]
    await joined(*later)
    store.release.set()
    async with asyncio.timeout(WAIT_S):
        models = await asyncio.gather(first, *later)

    assert [m.projection for m in models] == [ORDER_VIEWS, *names]
    positions = {m.projection: (m.collection, m.position) for m in models}
    assert positions == {
        ORDER_VIEWS: (collection_name(ORDER_VIEWS, 1), 10),
        CUSTOMER_SUMMARIES: (collection_name(CUSTOMER_SUMMARIES, 1), 20),
        DAILY_SALES: (collection_name(DAILY_SALES, 1), 0),
    }
    # Two rounds of two reads each, not two reads for each of the 31 queries.
    assert active.rounds == 2
    assert store.reads == Counter({REGISTRY: 2, CHECKPOINTS: 2})


async def test_a_query_is_answered_by_a_round_that_began_after_it_arrived(
    document_store: DocumentStore,
) -> None:
    # The first round has read the checkpoint at 10 and is still under way when it moves on and
    # a rebuild switches versions: a query arriving now must not take the first round's answer.
    store, active, first = await held_first_round(document_store, CHECKPOINTS)
    await set_checkpoint(document_store, ORDER_VIEWS, 30, version=2)
    await activate(document_store, ORDER_VIEWS, 2)
    later = asyncio.create_task(active.resolve(ORDER_VIEWS))
    await joined(later)
    store.release.set()
    async with asyncio.timeout(WAIT_S):
        before, after = await first, await later

    assert (before.version, before.position) == (1, 10)
    assert (after.version, after.collection, after.position) == (
        2,
        collection_name(ORDER_VIEWS, 2),
        30,
    )


async def test_a_failed_round_fails_every_query_in_it_and_the_next_round_reads_again(
    document_store: DocumentStore,
) -> None:
    store, active, first = await held_first_round(document_store, CHECKPOINTS)
    store.down = True
    failing = [asyncio.create_task(active.resolve(ORDER_VIEWS)) for _ in range(3)]
    await joined(*failing)
    store.release.set()
    async with asyncio.timeout(WAIT_S):
        assert (await first).position == 10
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)

    store.down = False
    assert (await active.resolve(ORDER_VIEWS)).position == 10
    assert active.rounds == 3


async def test_a_query_that_leaves_does_not_take_its_round_with_it(
    document_store: DocumentStore,
) -> None:
    store, active, first = await held_first_round(document_store, REGISTRY)
    leaving, staying = (asyncio.create_task(active.resolve(ORDER_VIEWS)) for _ in range(2))
    await joined(leaving, staying)
    leaving.cancel()
    store.release.set()
    async with asyncio.timeout(WAIT_S):
        assert (await first).position == 10
        assert (await staying).position == 10
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_the_queries_of_the_read_side_resolve_in_shared_rounds(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    store = HeldStore(document_store, hold=REGISTRY)
    watcher = ObservedWatcher(store)
    read_models = ReadModels(store, watcher)
    try:
        queries = [
            asyncio.create_task(read_models.snapshot(ORDER_VIEWS, None, 0)) for _ in range(10)
        ]
        async with asyncio.timeout(WAIT_S):
            await store.holding.wait()
        store.release.set()
        async with asyncio.timeout(WAIT_S):
            snapshots = await asyncio.gather(*queries)
        assert {(s.collection, s.position, s.stale) for s in snapshots} == {
            (collection_name(ORDER_VIEWS, 1), 10, False)
        }
        # The first query's round, then one for the nine that arrived while it read.
        assert store.reads == Counter({REGISTRY: 2, CHECKPOINTS: 2})
    finally:
        await watcher.close()


class StubStore:
    """No documents at all; while ``hold`` is set, a read never finishes."""

    def __init__(self) -> None:
        self.hold = True
        self.reading: asyncio.Event | None = None

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        if self.hold:
            assert self.reading is not None
            self.reading.set()
            await asyncio.Event().wait()
        return []


def test_a_round_left_behind_by_a_closed_event_loop_does_not_hold_up_the_next_loop() -> None:
    store = StubStore()
    active = ActiveModels(store)  # type: ignore[arg-type]
    old = asyncio.new_event_loop()
    # Its tasks are destroyed pending, as this test means them to be: nothing to report.
    old.set_exception_handler(lambda loop, context: None)

    left: list[asyncio.Task[ActiveReadModel]] = []

    async def held_round() -> None:
        store.reading = asyncio.Event()
        left.append(old.create_task(active.resolve(ORDER_VIEWS)))
        async with asyncio.timeout(WAIT_S):
            await store.reading.wait()

    old.run_until_complete(held_round())
    old.close()  # its round never finishes
    store.hold = False

    async def resolve() -> ActiveReadModel:
        async with asyncio.timeout(WAIT_S):
            return await active.resolve(ORDER_VIEWS)

    assert asyncio.run(resolve()) == ActiveReadModel(
        ORDER_VIEWS, 1, collection_name(ORDER_VIEWS, 1), 0
    )
