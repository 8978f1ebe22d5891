"""Stores for the projector tests: an event store and MongoDB of their own, a database per test.

The projector catches up from the start of the log whenever a database is new, so these tests
do not share the session's event store (whose log carries every other suite's orders) and use
an in-memory embedded-mongo (the SQLite-backed one manages a few dozen writes per second here).
When ``EVENTSTORE_URI`` / ``MONGO_URI`` name real servers, those are used as everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.esdb_event_store import EsdbEventStore
from tests.servers import eventstore_server, external_uri, mongo_server


def own_eventstore(directory: Path) -> Iterator[str]:
    """A new embedded-eventstore in ``directory`` (or the real one named by EVENTSTORE_URI)."""
    uri = external_uri("EVENTSTORE_URI")
    if uri:
        yield uri
        return
    server = eventstore_server(directory / "events.sqlite").start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="package")
def eventstore_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from own_eventstore(tmp_path_factory.mktemp("projector-esdb"))


@pytest.fixture
def fresh_eventstore_uri(tmp_path: Path) -> Iterator[str]:
    """An event store whose log holds only this test's events (for catch-ups from zero)."""
    yield from own_eventstore(tmp_path)


@pytest.fixture(scope="package")
def mongo_uri() -> Iterator[str]:
    uri = external_uri("MONGO_URI")
    if uri:
        yield uri
        return
    server = mongo_server(None).start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def event_store(esdb_event_store: EsdbEventStore) -> EsdbEventStore:
    """The esdbclient adapter on this package's event store (root conftest's fixture)."""
    return esdb_event_store
