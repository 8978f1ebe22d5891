"""Clients for the event store suite, all talking to ``eventstore_uri``.

The async client is the main one (it always appends over ``BatchAppend``); the sync client is
used where it takes a different RPC (one event over ``Append``); the raw stub sends what no client
would. ``append`` runs a test once per append RPC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from esdbclient import AsyncEventStoreDBClient, EventStoreDBClient, NewEvent, StreamState
from esdbclient.protos.Grpc import streams_pb2_grpc

from tests.eventstore.support import Appender
from tests.servers import ServerProcess, eventstore_server, external_uri

CALL_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def external_eventstore() -> bool:
    """True when the suite runs against a real server that may hold other data."""
    return external_uri("EVENTSTORE_URI") is not None


@pytest.fixture(scope="session")
async def client(eventstore_uri: str) -> AsyncIterator[AsyncEventStoreDBClient]:
    esdb = AsyncEventStoreDBClient(eventstore_uri)
    await esdb.connect()
    try:
        yield esdb
    finally:
        await esdb.close()


@pytest.fixture(scope="session")
def sync_client(eventstore_uri: str) -> Iterator[EventStoreDBClient]:
    esdb = EventStoreDBClient(eventstore_uri)
    try:
        yield esdb
    finally:
        esdb.close()


@pytest.fixture(scope="session")
def raw_channel(sync_client: EventStoreDBClient) -> Iterator[grpc.Channel]:
    """A plain gRPC channel to the server, for requests no client sends."""
    options = [
        ("grpc.max_receive_message_length", 17 * 1024 * 1024),
        ("grpc.max_send_message_length", 17 * 1024 * 1024),
    ]
    channel = grpc.insecure_channel(sync_client.connection_target, options=options)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture
def raw_streams(raw_channel: grpc.Channel) -> streams_pb2_grpc.StreamsStub:
    return streams_pb2_grpc.StreamsStub(raw_channel)  # type: ignore[no-untyped-call]


@pytest.fixture(params=["Append", "BatchAppend"])
def append(
    request: pytest.FixtureRequest,
    client: AsyncEventStoreDBClient,
    sync_client: EventStoreDBClient,
) -> Appender:
    """Append over one RPC: the sync client's ``Append`` or the async client's ``BatchAppend``."""

    async def over_append(
        stream: str, current_version: int | StreamState, events: Sequence[NewEvent]
    ) -> int:
        # The public sync API sends only a single event over Append; the service sends several.
        return sync_client.streams.append(
            stream_name=stream,
            current_version=current_version,
            events=events,
            timeout=CALL_TIMEOUT_S,
        )

    async def over_batch_append(
        stream: str, current_version: int | StreamState, events: Sequence[NewEvent]
    ) -> int:
        return await client.append_to_stream(
            stream, current_version=current_version, events=events, timeout=CALL_TIMEOUT_S
        )

    return over_append if request.param == "Append" else over_batch_append


@pytest.fixture
def own_server(
    tmp_path: Path, external_eventstore: bool
) -> Iterator[Callable[[Path | None], ServerProcess]]:
    """Starts private embedded servers (for kill -9 and restarts); stops them all afterwards."""
    if external_eventstore:
        pytest.skip("needs its own embedded server process; EVENTSTORE_URI is set")
    started: list[ServerProcess] = []

    def start(db_path: Path | None = None) -> ServerProcess:
        server = eventstore_server(db_path or tmp_path / "events.sqlite").start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()
