"""What read-your-writes costs MongoDB: one query per tick of the watcher, however many requests
wait, and nothing more for a request once the watcher released it. The watcher learns which
version is active from the requests that wait (they resolved it just before), so it reads the
registry only for a version it has not learnt recently."""

from __future__ import annotations

import asyncio
from collections import Counter

from read_side.consistency import ReadModels
from shared.contract.read_models import (
    CHECKPOINTS,
    CUSTOMER_SUMMARIES,
    ORDER_VIEWS,
    REGISTRY,
    collection_name,
)
from shared.ports.document_store import DocumentStore
from tests.fakes.document_store import DelegatingDocumentStore
from tests.read_side.support import LONG_WAIT_MS, WAIT_S, ObservedWatcher, activate, set_checkpoint

FAR = 10**15  # a token no checkpoint reaches in these tests unless told to


class CountingStore(DelegatingDocumentStore):
    """Counts the reads of each collection."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.reads: Counter[str] = Counter()

    def before_read(self, collection: str) -> None:
        self.reads[collection] += 1


def watching(store: CountingStore, registry_refresh_s: float = 3600.0) -> ObservedWatcher:
    """A watcher reading through ``store``, re-reading the registry only as told."""
    watcher = ObservedWatcher(store)
    watcher.registry_refresh_s = registry_refresh_s
    return watcher


async def queries_per_tick(watcher: ObservedWatcher, store: CountingStore) -> Counter[str]:
    """The reads of a few ticks, divided by the ticks (whole ticks only)."""
    await watcher.polls_after_now()
    polls, reads = watcher.polls, Counter(store.reads)
    for _ in range(3):
        await watcher.polls_after_now()
    ticks = watcher.polls - polls
    return Counter({name: (store.reads[name] - reads[name]) / ticks for name in store.reads})


async def test_waiting_costs_one_query_per_tick_however_many_wait(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 10)
    store = CountingStore(document_store)
    watcher = watching(store)
    read_models = ReadModels(document_store, watcher)
    try:
        one = asyncio.create_task(read_models.snapshot(ORDER_VIEWS, FAR, LONG_WAIT_MS))
        await watcher.until(lambda: watcher.waiting == 1)
        assert await queries_per_tick(watcher, store) == Counter({CHECKPOINTS: 1})

        many = [
            asyncio.create_task(read_models.snapshot(projection, FAR - n, LONG_WAIT_MS))
            for n in range(20)
            for projection in (ORDER_VIEWS, CUSTOMER_SUMMARIES)
        ]
        await watcher.until(lambda: watcher.waiting == 41)
        assert await queries_per_tick(watcher, store) == Counter({CHECKPOINTS: 1})
        assert store.reads[REGISTRY] == 0  # the requests told it which versions are active

        await set_checkpoint(document_store, ORDER_VIEWS, FAR)
        await set_checkpoint(document_store, CUSTOMER_SUMMARIES, FAR)
        async with asyncio.timeout(WAIT_S):
            snapshots = await asyncio.gather(one, *many)
        assert not any(snapshot.stale for snapshot in snapshots)
    finally:
        await watcher.close()


async def test_a_released_request_reads_nothing_more_before_its_answer(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    requests = CountingStore(document_store)
    watcher = watching(CountingStore(document_store))
    read_models = ReadModels(requests, watcher)
    try:
        request = asyncio.create_task(read_models.snapshot(ORDER_VIEWS, 50, LONG_WAIT_MS))
        await watcher.until(lambda: watcher.waiting == 1)
        resolved = Counter(requests.reads)  # the request's own look before it waited

        await set_checkpoint(document_store, ORDER_VIEWS, 50)
        async with asyncio.timeout(WAIT_S):
            snapshot = await request
        assert (snapshot.collection, snapshot.position, snapshot.stale) == (
            collection_name(ORDER_VIEWS, 1),
            50,
            False,
        )
        assert requests.reads == resolved
    finally:
        await watcher.close()


async def test_the_watcher_learns_a_switch_from_a_request_that_waits(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10, version=1)
    store = CountingStore(document_store)
    watcher = watching(store)
    read_models = ReadModels(document_store, watcher)
    try:
        early = asyncio.create_task(read_models.snapshot(ORDER_VIEWS, 50, LONG_WAIT_MS))
        await watcher.until(lambda: watcher.waiting == 1)

        # A rebuild switches to version 2, past the early request's token; version 1 stays
        # behind it. A request after the switch resolves version 2 and waits for more.
        await set_checkpoint(document_store, ORDER_VIEWS, 60, version=2)
        await activate(document_store, ORDER_VIEWS, 2)
        late = asyncio.create_task(read_models.snapshot(ORDER_VIEWS, 65, LONG_WAIT_MS))
        async with asyncio.timeout(WAIT_S):
            released = await early
        assert (released.collection, released.position, released.stale) == (
            collection_name(ORDER_VIEWS, 2),
            60,
            False,
        )

        await set_checkpoint(document_store, ORDER_VIEWS, 65, version=2)
        async with asyncio.timeout(WAIT_S):
            assert (await late).position == 65
        assert store.reads[REGISTRY] == 0
    finally:
        await watcher.close()


async def test_the_watcher_reads_the_registry_for_a_version_it_has_not_learnt_recently(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    store = CountingStore(document_store)
    watcher = watching(store)
    try:
        # Waiting without having resolved the version: the first tick reads the registry.
        waiter = asyncio.create_task(watcher.wait_for(ORDER_VIEWS, FAR, WAIT_S))
        await watcher.until(lambda: watcher.polls >= 1)
        assert store.reads[REGISTRY] == 1
        assert await queries_per_tick(watcher, store) == Counter({CHECKPOINTS: 1, REGISTRY: 0})

        # Knowledge older than registry_refresh_s is refreshed: here, on every tick.
        watcher.registry_refresh_s = 0
        assert await queries_per_tick(watcher, store) == Counter({CHECKPOINTS: 1, REGISTRY: 1})
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    finally:
        await watcher.close()
