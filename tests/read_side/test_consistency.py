"""Read-your-writes against the embedded MongoDB: waiters are released when the checkpoint of
the projection's active version reaches their token, and time out (stale) when it does not."""

from __future__ import annotations

import asyncio

import pytest

from read_side.consistency import ReadModels
from shared.contract.read_models import CUSTOMER_SUMMARIES, ORDER_VIEWS, collection_name
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from tests.fakes.document_store import DelegatingDocumentStore
from tests.read_side.support import LONG_WAIT_MS, WAIT_S, ObservedWatcher, activate, set_checkpoint


@pytest.fixture
def read_models(document_store: DocumentStore, watcher: ObservedWatcher) -> ReadModels:
    return ReadModels(document_store, watcher)


async def test_no_wait_without_a_token(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 7)
    snapshot = await read_models.snapshot(ORDER_VIEWS, None, LONG_WAIT_MS)
    assert (snapshot.position, snapshot.stale) == (7, False)
    assert snapshot.collection == collection_name(ORDER_VIEWS, 1)
    assert watcher.polls == 0 and not watcher.polling


async def test_no_wait_when_the_token_is_already_reached(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 40)
    for token in (0, 39, 40):
        snapshot = await read_models.snapshot(ORDER_VIEWS, token, LONG_WAIT_MS)
        assert (snapshot.position, snapshot.stale) == (40, False)
    assert watcher.polls == 0 and not watcher.polling


async def test_waiter_is_released_when_the_checkpoint_reaches_the_token(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    request = asyncio.create_task(read_models.snapshot(ORDER_VIEWS, 50, LONG_WAIT_MS))
    await watcher.until(lambda: watcher.waiting == 1)

    await set_checkpoint(document_store, ORDER_VIEWS, 49)
    await watcher.polls_after_now()
    assert not request.done() and watcher.waiting == 1

    await set_checkpoint(document_store, ORDER_VIEWS, 50)
    async with asyncio.timeout(WAIT_S):
        snapshot = await request
    assert (snapshot.position, snapshot.stale) == (50, False)
    assert watcher.waiting == 0 and not watcher.polling


async def test_a_checkpoint_past_the_token_releases_it(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    # Filter checkpoints move a projection past positions it had no event at.
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 3)
    request = asyncio.create_task(read_models.snapshot(CUSTOMER_SUMMARIES, 57, LONG_WAIT_MS))
    await watcher.until(lambda: watcher.waiting == 1)
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 1000)
    async with asyncio.timeout(WAIT_S):
        snapshot = await request
    assert (snapshot.position, snapshot.stale) == (1000, False)


async def test_times_out_with_the_stale_flag_and_the_data_it_has(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    snapshot = await read_models.snapshot(ORDER_VIEWS, 11, 30)
    assert (snapshot.position, snapshot.stale) == (10, True)
    assert snapshot.collection == collection_name(ORDER_VIEWS, 1)
    assert watcher.waiting == 0 and not watcher.polling


async def test_zero_wait_answers_at_once_flagged_stale(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10)
    snapshot = await read_models.snapshot(ORDER_VIEWS, 11, 0)
    assert (snapshot.position, snapshot.stale) == (10, True)
    assert watcher.polls == 0


async def test_before_the_projector_ever_ran_the_position_is_zero_and_stale(
    read_models: ReadModels,
) -> None:
    snapshot = await read_models.snapshot(ORDER_VIEWS, 1, 20)
    assert (snapshot.position, snapshot.stale) == (0, True)


async def test_one_watcher_serves_many_waiters_each_released_at_its_own_position(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 0)
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 0)
    low, middle, high = (
        asyncio.create_task(watcher.wait_for(ORDER_VIEWS, position, WAIT_S))
        for position in (20, 40, 60)
    )
    other = asyncio.create_task(watcher.wait_for(CUSTOMER_SUMMARIES, 20, WAIT_S))
    await watcher.until(lambda: watcher.waiting == 4)

    await set_checkpoint(document_store, ORDER_VIEWS, 45)
    async with asyncio.timeout(WAIT_S):
        assert await low and await middle
    await watcher.polls_after_now()
    assert not high.done() and not other.done()

    await set_checkpoint(document_store, ORDER_VIEWS, 60)
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 20)
    async with asyncio.timeout(WAIT_S):
        assert await high and await other
    assert watcher.waiting == 0 and not watcher.polling


async def test_follows_a_rebuild_switching_the_active_version(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 10, version=1)
    await set_checkpoint(document_store, ORDER_VIEWS, 5, version=2)  # rebuild under way
    request = asyncio.create_task(read_models.snapshot(ORDER_VIEWS, 50, LONG_WAIT_MS))
    await watcher.until(lambda: watcher.waiting == 1)

    await set_checkpoint(document_store, ORDER_VIEWS, 70, version=2)  # not active yet
    await watcher.polls_after_now()
    assert not request.done()

    await activate(document_store, ORDER_VIEWS, 2)
    async with asyncio.timeout(WAIT_S):
        snapshot = await request
    assert snapshot.collection == collection_name(ORDER_VIEWS, 2)
    assert (snapshot.position, snapshot.stale) == (70, False)


class FlakyStore(DelegatingDocumentStore):
    """The real store, whose reads fail while ``down`` is set (an outage mid-wait)."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store)
        self.down = True
        self.failures = 0

    def before_read(self, collection: str) -> None:
        if self.down:
            self.failures += 1
            raise StoreUnavailable("mongodb", "connection refused")


async def test_an_outage_while_waiting_does_not_stop_the_watcher(
    document_store: DocumentStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyStore(document_store)
    watcher = ObservedWatcher(flaky)
    await set_checkpoint(document_store, ORDER_VIEWS, 100)
    waiter = asyncio.create_task(watcher.wait_for(ORDER_VIEWS, 100, WAIT_S))
    await watcher.until(lambda: flaky.failures >= 3)
    assert not waiter.done()
    # One throttled line for the outage, not a traceback per poll.
    lines = [r for r in caplog.records if "cannot read projection checkpoints" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "StoreUnavailable" in lines[0].getMessage()
    flaky.down = False
    async with asyncio.timeout(WAIT_S):
        assert await waiter
    await watcher.close()
