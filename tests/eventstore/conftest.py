"""Clients for the event store suite, all talking to ``eventstore_uri``.

Every test that uses a client runs once per client library (``library``: esdbclient and
kurrentdbclient); ``errors`` holds that library's exceptions. The async client is the main one
(it always appends over ``BatchAppend``); the sync client is used where it takes a different RPC
(one event over ``Append``); the raw stub sends what no client would. ``append`` runs a test once
per append RPC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from esdbclient import EventStoreDBClient, NewEvent
from esdbclient.protos.Grpc import streams_pb2_grpc

from tests.eventstore.clients import LIBRARIES, AsyncClient, Errors, Library, SyncClient, Version
from tests.eventstore.support import Appender
from tests.servers import ServerProcess, eventstore_server, external_uri

CALL_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def external_eventstore() -> bool:
    """True when the suite runs against a real server that may hold other data."""
    return external_uri("EVENTSTORE_URI") is not None


@pytest.fixture(scope="session", params=list(LIBRARIES))
def library(request: pytest.FixtureRequest) -> Library:
    """The client library a test runs through; every client fixture follows it."""
    return LIBRARIES[request.param]


@pytest.fixture(scope="session")
def errors(library: Library) -> Errors:
    """The exceptions ``library`` raises, under esdbclient's names."""
    return library.errors


@pytest.fixture(scope="session")
async def client(eventstore_uri: str, library: Library) -> AsyncIterator[AsyncClient]:
    esdb = AsyncClient(library, eventstore_uri)
    await esdb.connect()
    try:
        yield esdb
    finally:
        await esdb.close()


@pytest.fixture(scope="session")
def sync_client(eventstore_uri: str, library: Library) -> Iterator[SyncClient]:
    with SyncClient(library, eventstore_uri) as esdb:
        yield esdb


@pytest.fixture(scope="session")
def raw_channel(eventstore_uri: str) -> Iterator[grpc.Channel]:
    """A plain gRPC channel to the server, for requests no client sends."""
    with EventStoreDBClient(eventstore_uri) as esdb:
        target = esdb.connection_target
    options = [
        ("grpc.max_receive_message_length", 17 * 1024 * 1024),
        ("grpc.max_send_message_length", 17 * 1024 * 1024),
    ]
    channel = grpc.insecure_channel(target, options=options)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture
def raw_streams(raw_channel: grpc.Channel) -> streams_pb2_grpc.StreamsStub:
    return streams_pb2_grpc.StreamsStub(raw_channel)  # type: ignore[no-untyped-call]


@pytest.fixture(params=["Append", "BatchAppend"])
def append(
    request: pytest.FixtureRequest, client: AsyncClient, sync_client: SyncClient
) -> Appender:
    """Append over one RPC: the sync client's ``Append`` or the async client's ``BatchAppend``."""

    async def over_append(stream: str, current_version: Version, events: Sequence[NewEvent]) -> int:
        # The public sync API sends only a single event over Append; the service sends several.
        return sync_client.append_over_append_rpc(
            stream, current_version=current_version, events=events, timeout=CALL_TIMEOUT_S
        )

    async def over_batch_append(
        stream: str, current_version: Version, events: Sequence[NewEvent]
    ) -> int:
        return await client.append_to_stream(
            stream, current_version=current_version, events=events, timeout=CALL_TIMEOUT_S
        )

    return over_append if request.param == "Append" else over_batch_append


@pytest.fixture
def own_server(tmp_path: Path, external_eventstore: bool) -> Iterator[Callable[..., ServerProcess]]:
    """Starts private embedded servers (for kill -9, restarts and command-line flags):
    ``start(db_path=None, *flags)``; kills them all afterwards."""
    if external_eventstore:
        pytest.skip("needs its own embedded server process; EVENTSTORE_URI is set")
    started: list[ServerProcess] = []

    def start(db_path: Path | None = None, *flags: str) -> ServerProcess:
        server = eventstore_server(db_path or tmp_path / "events.sqlite", 0, *flags).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()
