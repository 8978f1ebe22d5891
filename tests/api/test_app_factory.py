"""The app factory builds, checks and closes its own clients when none are injected."""

from __future__ import annotations

import httpx
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStore
from shared.process.startup import wait_for_store
from tests.api.stubs import UnusedDocumentStore
from tests.api.support import create, serve
from tests.conftest import unique


async def test_the_app_opens_its_own_stores_and_closes_them(
    eventstore_uri: str, mongo_uri: str, responses: list[httpx.Response]
) -> None:
    settings = ApiSettings(
        eventstore_uri=eventstore_uri,
        mongo_uri=mongo_uri,
        mongo_database=unique("api").replace("-", "_")[:40],
    )
    app = create_app(settings)

    async with serve(app, responses) as client:
        ready = await client.get("/health/ready")
        order = await create(client)
        stores = (app.state.event_store, app.state.document_store)

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"eventstore": "ok", "mongodb": "ok"}
    assert order["version"] == 0
    with pytest.raises(RuntimeError):  # the adapter was closed with the lifespan
        stores[0].client  # noqa: B018


async def test_readiness_names_the_store_that_is_down(
    event_store: EventStore, responses: list[httpx.Response]
) -> None:
    app = create_app(ApiSettings(), event_store=event_store, document_store=UnusedDocumentStore())
    async with serve(app, responses) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["mongodb"].startswith("unavailable")
    assert response.json()["checks"]["eventstore"] == "ok"


async def test_waiting_for_a_store_retries_until_it_answers() -> None:
    calls = 0

    async def ping() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise StoreUnavailable("eventstore", "starting")

    await wait_for_store("eventstore", ping, 30)
    assert calls == 3


async def test_waiting_for_a_store_gives_up_after_its_budget() -> None:
    async def ping() -> None:
        raise StoreUnavailable("mongodb", "connection refused")

    with pytest.raises(StoreUnavailable):
        await wait_for_store("mongodb", ping, 0)
