"""The API under test: ``create_app`` over a real EventStoreDB adapter (embedded-eventstore, or
the server named by EVENTSTORE_URI) and over the in-memory fake, driven by httpx in-process.

Every response any test receives is checked afterwards: none may be a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.ports.event_store import EventStore
from tests.api.stubs import UnusedDocumentStore
from tests.api.support import serve
from tests.fakes.event_store import InMemoryEventStore


@pytest.fixture(scope="session")
async def esdb_store(eventstore_uri: str) -> AsyncIterator[EsdbEventStore]:
    store = EsdbEventStore(eventstore_uri)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["esdb", "memory"])
def event_store(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "esdb":
        store: EventStore = request.getfixturevalue("esdb_store")
        return store
    return InMemoryEventStore()


@pytest.fixture
def settings() -> ApiSettings:
    return ApiSettings()


@pytest.fixture
def responses() -> Iterator[list[httpx.Response]]:
    """Every response of the test; none may be a 500."""
    seen: list[httpx.Response] = []
    yield seen
    failures = [
        f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:300]}"
        for r in seen
        if r.status_code == 500 or "Traceback" in r.text
    ]
    assert not failures, "\n".join(failures)


@pytest.fixture
async def client(
    settings: ApiSettings, event_store: EventStore, responses: list[httpx.Response]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, event_store=event_store, document_store=UnusedDocumentStore())
    async with serve(app, responses) as client:
        yield client
