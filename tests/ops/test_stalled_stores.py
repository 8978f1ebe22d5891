"""A store that stops answering (its process frozen with SIGSTOP: connections stay open, nothing
comes back) costs a request a bounded time: the API answers 503 with Retry-After, naming the
store and nothing internal, and serves again as soon as the store thaws.

The API here builds its own clients from settings, as in production (``create_app`` without
stores), over embedded servers this module owns, so that freezing them disturbs nobody else.
Without the bounds, the frozen calls hang for ever: each request is given ``WAIT_S`` before the
test fails, far beyond ``STORE_TIMEOUT_S`` and the driver time-outs the API sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from tests.api.support import new_order, serve
from tests.conftest import unique
from tests.servers import ServerProcess, eventstore_server, mongo_server

WAIT_S = 60.0
STORE_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def own_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    directory: Path = tmp_path_factory.mktemp("stalled")
    servers = {
        "eventstore": eventstore_server(directory / "events.db").start(),
        "mongodb": mongo_server(directory / "mongo.db").start(),
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            thaw(server)
            server.stop()


def thaw(server: ServerProcess) -> None:
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)


@contextlib.contextmanager
def frozen(server: ServerProcess) -> Iterator[None]:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        thaw(server)


@contextlib.asynccontextmanager
async def client_of(servers: dict[str, ServerProcess]) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        eventstore_uri=servers["eventstore"].uri,
        mongo_uri=servers["mongodb"].uri,
        mongo_database=unique("stalled").replace("-", "_")[:40],
        store_timeout_s=STORE_TIMEOUT_S,
    )
    async with serve(create_app(settings), [], timeout_s=WAIT_S) as client:
        yield client


async def answer(request: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
    async with asyncio.timeout(WAIT_S):  # a bound on failing, not a speed requirement
        response: httpx.Response = await request
    return response


def assert_store_unavailable(response: httpx.Response, store: str, uri: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["type"].endswith("/store-unavailable") and body["store"] == store
    # Nothing internal: no host, no port, no driver text.
    port = str(urlsplit(uri).port)
    assert "127.0.0.1" not in response.text and port not in response.text
    assert "Timeout" not in response.text and "deadline" not in response.text.lower()


async def test_a_frozen_event_store_answers_503_and_the_api_recovers(
    own_servers: dict[str, ServerProcess],
) -> None:
    server = own_servers["eventstore"]
    async with client_of(own_servers) as client:
        created = await answer(client.post("/orders", json=new_order()))
        assert created.status_code == 201, created.text
        order_id = created.json()["order_id"]
        with frozen(server):
            # Over an open connection (the channel was used above) and for a new order.
            item = {"sku": "SKU-1", "quantity": 1, "unit_price": 500}
            for request in (
                client.post(f"/orders/{order_id}/items", json=item),
                client.post("/orders", json=new_order()),
            ):
                assert_store_unavailable(await answer(request), "eventstore", server.uri)
            ready = await answer(client.get("/health/ready"))
            assert ready.status_code == 503
            assert ready.json()["checks"]["eventstore"].startswith("unavailable")
        again = await answer(client.post(f"/orders/{order_id}/items", json=item))
        assert again.status_code in (200, 201), again.text


async def test_a_frozen_mongodb_answers_503_and_the_api_recovers(
    own_servers: dict[str, ServerProcess],
) -> None:
    server = own_servers["mongodb"]
    async with client_of(own_servers) as client:
        order = new_order()
        created = await answer(client.post("/orders", json=order))
        assert created.status_code == 201, created.text
        order_id, customer = created.json()["order_id"], order["customer_id"]
        with frozen(server):
            for request in (
                client.get(f"/orders/{order_id}"),
                client.get(f"/customers/{customer}/summary"),
            ):
                assert_store_unavailable(await answer(request), "mongodb", server.uri)
            ready = await answer(client.get("/health/ready"))
            assert ready.status_code == 503
            assert ready.json()["checks"]["mongodb"].startswith("unavailable")
        # No projector runs here: the order is unknown to the read side, but MongoDB answers.
        after = await answer(client.get(f"/orders/{order_id}"))
        assert after.status_code == 404, after.text
