"""The event store adapter's kept BatchAppend calls: appends reuse them, and whenever one cannot
be used (all busy, failed, its connection gone) the append goes through esdbclient as before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from esdbclient import AsyncEventStoreDBClient, StreamState
from esdbclient import NewEvent as EsdbNewEvent
from esdbclient.exceptions import WrongCurrentVersion

from shared.adapters.esdb_event_store import EsdbEventStore, _AppendCalls
from shared.ports.event_store import NO_STREAM, NewEvent
from tests.conftest import unique
from tests.servers import eventstore_server, external_uri

TIMEOUT_S = 10.0


def new_event(n: int = 0) -> NewEvent:
    return NewEvent(event_id=uuid.uuid4(), type="Tested", data=b'{"n": %d}' % n, metadata=b"{}")


def esdb_event(n: int = 0) -> EsdbNewEvent:
    return EsdbNewEvent(type="Tested", data=b'{"n": %d}' % n, metadata=b"{}")


@pytest.fixture
async def client(eventstore_uri: str) -> AsyncIterator[AsyncEventStoreDBClient]:
    client = AsyncEventStoreDBClient(eventstore_uri)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


async def test_appends_one_after_another_share_one_call(
    esdb_event_store: EsdbEventStore,
) -> None:
    streams = [unique("kept") for _ in range(5)]
    for n, stream in enumerate(streams):
        await esdb_event_store.append(stream, NO_STREAM, [new_event(n)])
        await esdb_event_store.append(stream, 0, [new_event(n)])
    calls = esdb_event_store._append_calls
    assert calls is not None and calls.open_calls == 1
    for stream in streams:
        assert [e.revision for e in await esdb_event_store.read_stream(stream)] == [0, 1]


async def test_concurrent_appends_open_at_most_the_limit_and_the_rest_go_through_esdbclient(
    client: AsyncEventStoreDBClient,
) -> None:
    calls = _AppendCalls(client, limit=2)
    try:
        answers = await asyncio.gather(
            *(
                calls.append(unique("busy"), StreamState.NO_STREAM, [esdb_event()], TIMEOUT_S)
                for _ in range(5)
            )
        )
    finally:
        calls.drop_all()
    # Two appends on the two calls; the other three are handed back (None) to esdbclient.
    assert len([a for a in answers if a is not None]) == 2
    assert answers.count(None) == 3


async def test_an_answered_error_is_raised_and_its_call_kept(
    client: AsyncEventStoreDBClient,
) -> None:
    calls = _AppendCalls(client)
    stream = unique("answered")
    try:
        await calls.append(stream, StreamState.NO_STREAM, [esdb_event()], TIMEOUT_S)
        with pytest.raises(WrongCurrentVersion):
            await calls.append(stream, 5, [esdb_event(1)], TIMEOUT_S)
        assert calls.open_calls == 1
        assert await calls.append(stream, 0, [esdb_event(1)], TIMEOUT_S) is not None
        assert calls.open_calls == 1
    finally:
        calls.drop_all()
    assert calls.open_calls == 0


async def test_a_reconnect_drops_the_calls_of_the_old_connection(
    client: AsyncEventStoreDBClient,
) -> None:
    calls = _AppendCalls(client)
    try:
        await calls.append(unique("reconnect"), StreamState.NO_STREAM, [esdb_event()], TIMEOUT_S)
        await client.reconnect()
        stream = unique("reconnect")
        assert await calls.append(stream, StreamState.NO_STREAM, [esdb_event()], TIMEOUT_S)
        assert calls.open_calls == 1
    finally:
        calls.drop_all()
    assert [e.stream_position for e in await client.get_stream(stream)] == [0]


async def test_closing_the_adapter_ends_its_calls(eventstore_uri: str) -> None:
    store = EsdbEventStore(eventstore_uri)
    await store.connect()
    await store.append(unique("closing"), NO_STREAM, [new_event()])
    calls = store._append_calls
    assert calls is not None and calls.open_calls == 1
    await store.close()
    assert calls.open_calls == 0


@pytest.mark.skipif(
    external_uri("EVENTSTORE_URI") is not None, reason="restarts the embedded event store"
)
async def test_after_a_store_restart_the_next_append_succeeds_and_a_new_call_is_kept(
    tmp_path: Path,
) -> None:
    database = tmp_path / "events.sqlite"
    server = eventstore_server(database).start()
    store = EsdbEventStore(server.uri)
    try:
        await store.connect()
        stream = unique("restart")
        await store.append(stream, NO_STREAM, [new_event(0)])
        port = int(server.uri.rsplit(":", 1)[1].split("?")[0])
        server.stop()
        server = eventstore_server(database, port).start()
        # The kept call died with the old server: this append goes through esdbclient, at once.
        async with asyncio.timeout(TIMEOUT_S):
            result = await store.append(stream, 0, [new_event(1)])
        assert result.revision == 1
        await store.append(stream, 1, [new_event(2)])
        calls = store._append_calls
        assert calls is not None and calls.open_calls == 1
        assert [e.revision for e in await store.read_stream(stream)] == [0, 1, 2]
    finally:
        await store.close()
        server.stop()
