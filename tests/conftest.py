"""Fixtures shared by every suite: the two stores, embedded or real.

When ``EVENTSTORE_URI`` / ``MONGO_URI`` are set, those servers are used instead of starting the
embedded ones; suites must then not assume an empty database, so they use random stream and
database names (see ``unique``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from tests.servers import eventstore_server, external_uri, mongo_server


def unique(prefix: str) -> str:
    """A fresh name, so tests never collide with each other or with existing data."""
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def eventstore_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of an EventStoreDB-compatible server for the whole session."""
    uri = external_uri("EVENTSTORE_URI")
    if uri:
        yield uri
        return
    server = eventstore_server(tmp_path_factory.mktemp("esdb") / "events.sqlite").start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a MongoDB-wire server for the whole session."""
    uri = external_uri("MONGO_URI")
    if uri:
        yield uri
        return
    server = mongo_server(tmp_path_factory.mktemp("mongo") / "mongo.sqlite").start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def mongo_database_name() -> str:
    """A database name no other test uses."""
    return unique("test").replace("-", "_")[:60]


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite"


@pytest.fixture
async def esdb_event_store(eventstore_uri: str) -> AsyncIterator[EsdbEventStore]:
    """The esdbclient adapter, connected to the session's event store."""
    store = EsdbEventStore(eventstore_uri)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def document_store(
    mongo_uri: str, mongo_database_name: str
) -> AsyncIterator[MotorDocumentStore]:
    """The motor adapter on a database of the test's own, dropped afterwards."""
    store = MotorDocumentStore(mongo_uri, mongo_database_name)
    try:
        yield store
    finally:
        for collection in await store.list_collections():
            await store.drop_collection(collection)
        await store.close()
