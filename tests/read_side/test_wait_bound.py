"""The bound on concurrent read-your-writes waits: beyond READ_WAIT_MAX_WAITERS a read that would
wait is refused at once with 503 + Retry-After; reads that need no wait still answer; waiters
whose request is cancelled or whose client leaves are removed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from read_side.bootstrap import build_query_bus
from read_side.http import router
from read_side.http_docs import WAIT_REFUSED_STATUS, WAIT_REFUSED_TYPE
from shared.contract.read_models import ORDER_VIEWS
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStore
from shared.web.problem_details import PROBLEM_JSON, PROBLEM_TYPE_BASE, install_problem_handlers
from tests.api.support import serve
from tests.conftest import unique
from tests.ops.support import samples
from tests.read_side.documents import order_document
from tests.read_side.support import LONG_WAIT_MS, WAIT_S, ObservedWatcher, seed, set_checkpoint
from tests.waiting import wait_until

MAX_WAITERS = 3
FAR_FUTURE = str(10**15)
CHECKPOINT = 10
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def app(document_store: DocumentStore, watcher: ObservedWatcher) -> FastAPI:
    watcher.max_waiters = MAX_WAITERS
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.state.query_bus = build_query_bus(document_store, watcher=watcher)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def order_id(document_store: DocumentStore) -> str:
    document = order_document(customer_id=unique("c"), created_at=START, position=5)
    await seed(document_store, ORDER_VIEWS, [document])
    await set_checkpoint(document_store, ORDER_VIEWS, CHECKPOINT)
    return str(document["_id"])


def _read(client: httpx.AsyncClient, order_id: str, token: str | None) -> Any:
    headers = {"X-Consistency-Token": token} if token is not None else {}
    return client.get(f"/orders/{order_id}", headers=headers, params={"wait_ms": LONG_WAIT_MS})


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == WAIT_REFUSED_STATUS, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM_TYPE_BASE + WAIT_REFUSED_TYPE
    assert int(response.headers["Retry-After"]) >= 1


async def test_beyond_the_bound_a_waiting_read_is_refused_at_once(
    client: httpx.AsyncClient,
    watcher: ObservedWatcher,
    order_id: str,
    document_store: DocumentStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = [asyncio.create_task(_read(client, order_id, FAR_FUTURE)) for _ in range(MAX_WAITERS)]
    await watcher.until(lambda: watcher.waiting == MAX_WAITERS)

    # Shorter than the reads' own wait: a refusal that first waited would fail here.
    async with asyncio.timeout(WAIT_S):
        refused = [await _read(client, order_id, FAR_FUTURE) for _ in range(3)]
        without_token = await _read(client, order_id, None)
        already_reached = await _read(client, order_id, str(CHECKPOINT))
    for response in refused:
        _assert_refused(response)
    assert without_token.status_code == 200, without_token.text
    assert already_reached.status_code == 200, already_reached.text
    assert watcher.waiting == MAX_WAITERS and not any(task.done() for task in held)
    assert watcher.refused == 3
    lines = [r for r in caplog.records if "READ_WAIT_MAX_WAITERS" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None  # throttled, no traceback

    # The projector catches up: the held reads are answered, and the places are free again.
    await set_checkpoint(document_store, ORDER_VIEWS, 10**15)
    async with asyncio.timeout(WAIT_S):
        answers = await asyncio.gather(*held)
    assert [a.status_code for a in answers] == [200] * MAX_WAITERS
    assert watcher.waiting == 0
    async with asyncio.timeout(WAIT_S):
        again = await _read(client, order_id, str(10**15))
    assert again.status_code == 200, again.text


async def test_cancelled_waits_give_their_places_back(
    client: httpx.AsyncClient, watcher: ObservedWatcher, order_id: str
) -> None:
    held = [asyncio.create_task(_read(client, order_id, FAR_FUTURE)) for _ in range(MAX_WAITERS)]
    await watcher.until(lambda: watcher.waiting == MAX_WAITERS)
    for task in held:
        task.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    assert watcher.waiting == 0 and not watcher.polling

    # The places are usable again: a new wait registers instead of being refused.
    again = asyncio.create_task(_read(client, order_id, FAR_FUTURE))
    await watcher.until(lambda: watcher.waiting == 1)
    again.cancel()
    await asyncio.gather(again, return_exceptions=True)
    assert watcher.waiting == 0


async def test_a_client_that_leaves_stops_waiting(
    app: FastAPI, watcher: ObservedWatcher, order_id: str
) -> None:
    # uvicorn does not cancel the request of a client that left; it only tells the app through
    # receive(). Plain ASGI here, to be that client.
    left = asyncio.Event()
    sent: list[Message] = []
    bodies = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if bodies:
            return bodies.pop()
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/orders/{order_id}",
        "raw_path": f"/orders/{order_id}".encode(),
        "root_path": "",
        "query_string": f"wait_ms={LONG_WAIT_MS}".encode(),
        "headers": [(b"host", b"test"), (b"x-consistency-token", FAR_FUTURE.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    request = asyncio.create_task(app(scope, receive, send))
    await watcher.until(lambda: watcher.waiting == 1)

    left.set()
    async with asyncio.timeout(WAIT_S):  # well before the read's own wait would end
        await request
    assert watcher.waiting == 0 and not watcher.polling


async def test_the_setting_bounds_the_apis_waiters(
    esdb_event_store: EventStore, document_store: DocumentStore, order_id: str
) -> None:
    app = create_app(
        ApiSettings(read_wait_max_waiters=1),
        event_store=esdb_event_store,
        document_store=document_store,
    )
    async with serve(app, [], timeout_s=WAIT_S * 3) as client:
        held = asyncio.create_task(_read(client, order_id, FAR_FUTURE))

        async def one_waiting() -> bool:
            metrics = samples((await client.get("/metrics")).text)
            return metrics.get(("orders_api_read_your_writes_waiting", frozenset())) == 1

        await wait_until(one_waiting, "one read waiting", within_s=WAIT_S)
        async with asyncio.timeout(WAIT_S):
            _assert_refused(await _read(client, order_id, FAR_FUTURE))
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)


def test_the_problem_is_documented_in_openapi() -> None:
    app = FastAPI()
    app.include_router(router)
    described = app.openapi()["paths"]["/orders/{order_id}"]["get"]["responses"]["503"]
    assert WAIT_REFUSED_TYPE in described["description"]
