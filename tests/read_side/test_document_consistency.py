"""Read-your-writes for one order: its own document answers as soon as it has applied the token
(its ``_position`` is at least the token), before the projection's checkpoint moves, which the
projector saves only once the whole batch is written. Here the projector's writes are made by
hand, the document first and the checkpoint held back. A document older than the token still
waits for the checkpoint, and answers stale when neither arrives within ``wait_ms``."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from read_side.consistency import ReadModels, has_applied
from shared.contract.read_models import (
    CHECKPOINTS,
    CUSTOMER_SUMMARIES,
    ORDER_VIEWS,
    POSITION_FIELD,
    collection_name,
)
from shared.ports.document_store import DocumentStore
from tests.conftest import unique
from tests.read_side.documents import order_document
from tests.read_side.support import (
    LONG_WAIT_MS,
    WAIT_S,
    ObservedWatcher,
    activate,
    seed,
    set_checkpoint,
)
from tests.read_side.test_watcher_queries import FAR, CountingStore, queries_per_tick, watching

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
CHECKPOINT = 100  # where the projection's checkpoint is held back
TOKEN = 150  # the position of the command's event, past the checkpoint


def an_order(position: int, **fields: Any) -> dict[str, Any]:
    return order_document(customer_id=unique("c"), created_at=START, position=position, **fields)


def seen(document: dict[str, Any] | None) -> tuple[object, ...] | None:
    """What tells the documents of these tests apart (datetimes come back naive from BSON)."""
    if document is None:
        return None
    return (document["_id"], document["status"], document[POSITION_FIELD])


def read(client: httpx.AsyncClient, order_id: str, token: int, wait_ms: int = LONG_WAIT_MS) -> Any:
    return client.get(
        f"/orders/{order_id}",
        headers={"X-Consistency-Token": str(token)},
        params={"wait_ms": wait_ms},
    )


# --- over HTTP ------------------------------------------------------------------------------


async def test_a_document_that_has_applied_the_token_answers_without_waiting(
    client: httpx.AsyncClient, document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    order = an_order(TOKEN, status="paid")
    await seed(document_store, ORDER_VIEWS, [order])

    # Shorter than the read's own wait: a read that waited for the checkpoint fails here.
    async with asyncio.timeout(WAIT_S):
        response = await read(client, order["_id"], TOKEN)

    assert response.status_code == 200, response.text
    assert (response.json()["order_id"], response.json()["status"]) == (order["_id"], "paid")
    assert response.headers["X-Read-Model-Stale"] == "false"
    assert response.headers["X-Read-Model-Position"] == str(CHECKPOINT)  # the read model's own
    assert watcher.polls == 0 and not watcher.polling


async def test_a_waiting_read_is_released_by_its_document_before_the_checkpoint(
    client: httpx.AsyncClient, document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    before = an_order(CHECKPOINT - 10, status="placed")
    await seed(document_store, ORDER_VIEWS, [before])
    request = asyncio.create_task(read(client, before["_id"], TOKEN))
    await watcher.until(lambda: watcher.waiting == 1)

    # The projector writes the order's document; its checkpoint stays behind the token.
    await seed(document_store, ORDER_VIEWS, [{**before, "status": "paid", POSITION_FIELD: TOKEN}])
    async with asyncio.timeout(WAIT_S):
        response = await request

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paid"
    assert response.headers["X-Read-Model-Stale"] == "false"
    assert response.headers["X-Read-Model-Position"] == str(CHECKPOINT)
    assert watcher.waiting == 0


async def test_a_document_older_than_the_token_waits_for_the_checkpoint(
    client: httpx.AsyncClient, document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    order = an_order(CHECKPOINT + 20, status="placed")
    await seed(document_store, ORDER_VIEWS, [order])
    request = asyncio.create_task(read(client, order["_id"], TOKEN))
    await watcher.until(lambda: watcher.waiting == 1)

    # One short of the token is not enough, however often the watcher reads it.
    await seed(document_store, ORDER_VIEWS, [{**order, POSITION_FIELD: TOKEN - 1}])
    await watcher.polls_after_now()
    await watcher.polls_after_now()
    assert not request.done() and watcher.waiting == 1

    # The token was of an event that does not touch this order: the checkpoint passing it
    # releases the read, with the document as it is (it has every event up to the token).
    await set_checkpoint(document_store, ORDER_VIEWS, TOKEN + 13)
    async with asyncio.timeout(WAIT_S):
        response = await request

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "placed"
    assert response.headers["X-Read-Model-Stale"] == "false"
    assert response.headers["X-Read-Model-Position"] == str(TOKEN + 13)


@pytest.mark.parametrize("wait_ms", [0, 30])
async def test_a_document_older_than_the_token_answers_stale_after_wait_ms(
    client: httpx.AsyncClient, document_store: DocumentStore, wait_ms: int
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    order = an_order(TOKEN - 1, status="placed")
    await seed(document_store, ORDER_VIEWS, [order])

    response = await read(client, order["_id"], TOKEN, wait_ms)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "placed"  # the data it has
    assert response.headers["X-Read-Model-Stale"] == "true"
    assert response.headers["X-Read-Model-Position"] == str(CHECKPOINT)


async def test_a_missing_order_still_waits_for_the_checkpoint_and_is_a_stale_404(
    client: httpx.AsyncClient, document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    never_written = an_order(TOKEN)
    response = await read(client, never_written["_id"], TOKEN, wait_ms=30)
    assert response.status_code == 404, response.text
    assert response.headers["X-Read-Model-Stale"] == "true"
    assert response.headers["X-Read-Model-Position"] == str(CHECKPOINT)
    assert watcher.waiting == 0


# --- the watcher ----------------------------------------------------------------------------


@pytest.fixture
def read_models(document_store: DocumentStore, watcher: ObservedWatcher) -> ReadModels:
    return ReadModels(document_store, watcher)


async def test_a_document_of_a_version_not_yet_active_does_not_answer(
    document_store: DocumentStore, read_models: ReadModels, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT, version=1)
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT, version=2)  # a rebuild
    old = an_order(CHECKPOINT - 10, status="placed")
    await seed(document_store, ORDER_VIEWS, [old], version=1)
    new = {**old, "status": "paid", POSITION_FIELD: TOKEN}
    await seed(document_store, ORDER_VIEWS, [new], version=2)
    request = asyncio.create_task(
        read_models.document(ORDER_VIEWS, old["_id"], TOKEN, LONG_WAIT_MS)
    )
    await watcher.until(lambda: watcher.waiting == 1)
    await watcher.polls_after_now()
    assert not request.done()

    # Once the rebuild switched, the watcher learns it from the registry and reads version 2.
    await activate(document_store, ORDER_VIEWS, 2)
    async with asyncio.timeout(WAIT_S):
        snapshot, document = await request
    assert (snapshot.collection, snapshot.position, snapshot.stale) == (
        collection_name(ORDER_VIEWS, 2),
        CHECKPOINT,
        False,
    )
    assert seen(document) == seen(new)


async def test_waiting_documents_cost_one_document_read_per_tick_however_many_wait(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, CHECKPOINT)
    orders = [an_order(CHECKPOINT - 1) for _ in range(20)]
    await seed(document_store, ORDER_VIEWS, orders)
    store = CountingStore(document_store)
    watcher = watching(store)
    read_models = ReadModels(document_store, watcher)
    try:
        # The first order's token is the lowest: its document is the one each tick reads.
        reads = [
            asyncio.create_task(
                read_models.document(ORDER_VIEWS, order["_id"], TOKEN + n, LONG_WAIT_MS)
            )
            for n, order in enumerate(orders)
        ]
        others = [
            asyncio.create_task(read_models.snapshot(projection, FAR, LONG_WAIT_MS))
            for projection in (ORDER_VIEWS, CUSTOMER_SUMMARIES)
        ]
        await watcher.until(lambda: watcher.waiting == 22)
        collection = collection_name(ORDER_VIEWS, 1)
        assert await queries_per_tick(watcher, store) == Counter({CHECKPOINTS: 1, collection: 1})

        await seed(document_store, ORDER_VIEWS, [{**orders[0], POSITION_FIELD: TOKEN}])
        async with asyncio.timeout(WAIT_S):
            snapshot, document = await reads[0]
        assert (snapshot.position, snapshot.stale) == (CHECKPOINT, False)
        assert seen(document) == seen({**orders[0], POSITION_FIELD: TOKEN})
        assert not any(task.done() for task in reads[1:] + others)

        await set_checkpoint(document_store, ORDER_VIEWS, FAR)
        await set_checkpoint(document_store, CUSTOMER_SUMMARIES, FAR)
        async with asyncio.timeout(WAIT_S):
            answers = await asyncio.gather(*reads[1:])
            await asyncio.gather(*others)
        assert all(not snapshot.stale for snapshot, _ in answers)
        assert [seen(document) for _, document in answers] == [seen(o) for o in orders[1:]]
    finally:
        await watcher.close()


async def test_a_read_released_by_its_document_reads_nothing_more(
    document_store: DocumentStore,
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    order = an_order(CHECKPOINT - 1)
    await seed(document_store, ORDER_VIEWS, [order])
    requests = CountingStore(document_store)
    watcher = watching(CountingStore(document_store))
    read_models = ReadModels(requests, watcher)
    try:
        request = asyncio.create_task(
            read_models.document(ORDER_VIEWS, order["_id"], TOKEN, LONG_WAIT_MS)
        )
        await watcher.until(lambda: watcher.waiting == 1)
        resolved = Counter(requests.reads)  # the request's own look before it waited

        await seed(document_store, ORDER_VIEWS, [{**order, POSITION_FIELD: TOKEN + 5}])
        async with asyncio.timeout(WAIT_S):
            snapshot, document = await request
        assert snapshot.stale is False
        assert seen(document) == seen({**order, POSITION_FIELD: TOKEN + 5})
        assert requests.reads == resolved
    finally:
        await watcher.close()


@pytest.mark.parametrize(
    ("document", "applied"),
    [
        (None, False),
        ({"_id": "a"}, False),
        ({"_id": "a", POSITION_FIELD: TOKEN - 1}, False),
        ({"_id": "a", POSITION_FIELD: TOKEN}, True),
        ({"_id": "a", POSITION_FIELD: TOKEN + 1}, True),
        ({"_id": "a", POSITION_FIELD: True}, False),
        ({"_id": "a", POSITION_FIELD: str(TOKEN)}, False),
    ],
)
def test_has_applied(document: dict[str, Any] | None, applied: bool) -> None:
    assert has_applied(document, TOKEN) is applied
