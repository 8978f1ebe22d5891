"""Where embedded-eventstore once answered differently from EventStoreDB (issue 11).

Each test states what a real EventStoreDB answers, so it passes against one (EVENTSTORE_URI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import esdbclient.exceptions
import grpc
import kurrentdbclient.exceptions
import pytest
from esdbclient import StreamState
from esdbclient.protos.Grpc import shared_pb2, streams_pb2, streams_pb2_grpc

from tests.eventstore.clients import AsyncClient, Errors, Library, SyncClient, esdbclient_only
from tests.eventstore.support import ids, new_events, read_all, read_stream, stream_name
from tests.servers import ServerProcess

Options = streams_pb2.ReadReq.Options

# What each library raises for gRPC UNKNOWN (not among `Errors`, which no other test needs).
UNKNOWN_ERROR: dict[str, type[Exception]] = {
    "esdbclient": esdbclient.exceptions.UnknownError,
    "kurrentdbclient": kurrentdbclient.exceptions.UnknownError,
}


@pytest.mark.parametrize("with_metadata", [True, False], ids=["metadata", "no-metadata"])
async def test_metadata_of_a_tombstoned_stream_reads_as_deleted_yet_can_be_set(
    client: AsyncClient, errors: Errors, with_metadata: bool
) -> None:
    # As esdbclient's and kurrentdbclient's test_stream_metadata_get_and_set assert.
    stream = stream_name("es-dev-meta")
    await client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(2)
    )
    if with_metadata:
        await client.set_stream_metadata(
            stream, metadata={"foo": "bar"}, current_version=StreamState.NO_STREAM
        )
    await client.tombstone_stream(stream, current_version=StreamState.ANY)

    with pytest.raises(errors.StreamIsDeleted):
        await client.get_stream_metadata(stream)
    with pytest.raises(errors.StreamIsDeleted):
        await read_stream(client, f"$${stream}")

    # Writes to the metastream are still checked against its own revisions, and accepted.
    await client.set_stream_metadata(
        stream,
        metadata={"foo": "baz"},
        current_version=0 if with_metadata else StreamState.NO_STREAM,
    )
    await client.set_stream_metadata(
        stream, metadata={"foo": "qux"}, current_version=StreamState.ANY
    )
    with pytest.raises(errors.StreamIsDeleted):
        await client.get_stream_metadata(stream)


@pytest.fixture
async def between_two_events(client: AsyncClient) -> tuple[int, int]:
    """The position of a fresh event, and a position inside the log where no event starts."""
    stream = stream_name("es-dev-pos")
    await client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(2)
    )
    first, second = (event.commit_position for event in await read_stream(client, stream))
    assert first is not None and second is not None and first + 1 < second
    return first, first + 1


def all_request(
    position: int, *, forwards: bool = True, filtered: bool, subscription: bool = False
) -> streams_pb2.ReadReq:
    """An `$all` read (or subscription) from `position`, as clients send it (commit = prepare)."""
    options = Options(
        all=Options.AllOptions(
            position=Options.Position(commit_position=position, prepare_position=position)
        ),
        read_direction=Options.Forwards if forwards else Options.Backwards,
        uuid_option=Options.UUIDOption(string=shared_pb2.Empty()),
    )
    if subscription:
        options.subscription.SetInParent()
    else:
        options.count = 10
    if filtered:
        options.filter.event_type.regex = "^(?!\\$)"
        options.filter.max = 32
        options.filter.checkpointIntervalMultiplier = 1
    else:
        options.no_filter.SetInParent()
    return streams_pb2.ReadReq(options=options)


def failure(responses: Iterator[streams_pb2.ReadResp]) -> tuple[grpc.StatusCode, str]:
    """The status a read or subscription ends with, after any responses it sent first."""
    with pytest.raises(grpc.RpcError) as raised:
        for _ in responses:
            pass
    error = raised.value
    assert isinstance(error, grpc.Call)
    return error.code(), error.details() or ""


def expected_failures(
    since_24_10: tuple[grpc.StatusCode, str], before: str, external_eventstore: bool
) -> list[tuple[grpc.StatusCode, str]]:
    """EventStoreDB 24.10 reports InvalidPosition; 22.10 and 23.10 reported a generic Error
    (UNKNOWN "Unexpected ...: Error") for the same read. The embedded server answers as 24.10."""
    return (
        [since_24_10, (grpc.StatusCode.UNKNOWN, before)] if external_eventstore else [since_24_10]
    )


@esdbclient_only  # raw gRPC: the client library does not matter
@pytest.mark.parametrize("forwards", [True, False], ids=["forwards", "backwards"])
@pytest.mark.parametrize("filtered", [True, False], ids=["filtered", "unfiltered"])
async def test_read_all_from_a_position_inside_the_log_that_no_event_starts_at_fails(
    raw_streams: streams_pb2_grpc.StreamsStub,
    between_two_events: tuple[int, int],
    external_eventstore: bool,
    forwards: bool,
    filtered: bool,
) -> None:
    # EventStoreDB: the enumerators (Enumerator.ReadAll{Forwards,Backwards}[Filtered].cs) end
    # every result but Success and AccessDenied with UnknownError("Unexpected <result type>:
    # <result>"), and StorageReaderWorker answers InvalidPosition for a read inside a record.
    event_position, inside = between_two_events
    result = "FilteredReadAllResult" if filtered else "ReadAllResult"
    request = all_request(inside, forwards=forwards, filtered=filtered)
    assert failure(raw_streams.Read(request, timeout=10)) in expected_failures(
        (grpc.StatusCode.UNKNOWN, f"Unexpected {result}: InvalidPosition"),
        f"Unexpected {result}: Error",
        external_eventstore,
    )
    # The position of an event is a valid start.
    valid = all_request(event_position, forwards=forwards, filtered=filtered)
    assert list(raw_streams.Read(valid, timeout=10))


async def test_client_read_all_from_a_position_no_event_starts_at_is_an_unknown_error(
    client: AsyncClient, library: Library, between_two_events: tuple[int, int]
) -> None:
    # As eventsourcing-kurrentdb's test_insert_select asserts (a filtered read).
    _, inside = between_two_events
    with pytest.raises(UNKNOWN_ERROR[library.name]):
        await read_all(client, commit_position=inside)


@esdbclient_only  # raw gRPC: the client library does not matter
@pytest.mark.parametrize("filtered", [True, False], ids=["filtered", "unfiltered"])
async def test_subscription_to_all_from_a_position_no_event_starts_at_fails_after_confirming(
    raw_streams: streams_pb2_grpc.StreamsStub,
    between_two_events: tuple[int, int],
    external_eventstore: bool,
    filtered: bool,
) -> None:
    # EventStoreDB (Enumerator.AllSubscription[Filtered].cs): the subscription is confirmed,
    # then its catch-up read gets InvalidPosition, which Streams.Read.cs turns into
    # RpcExceptions.InvalidPositionException(): INVALID_ARGUMENT.
    _, inside = between_two_events
    responses = raw_streams.Read(
        all_request(inside, filtered=filtered, subscription=True), timeout=10
    )
    try:
        first = next(responses)
        assert first.WhichOneof("content") == "confirmation"
        result = "FilteredReadAllResult" if filtered else "ReadAllResult"
        assert failure(responses) in expected_failures(
            (grpc.StatusCode.INVALID_ARGUMENT, "Trying to read from an invalid position."),
            f"Unexpected {result}: Error",
            external_eventstore,
        )
    finally:
        responses.cancel()


@pytest.mark.parametrize(
    ("flags", "advertised"),
    [
        (["--host", "0.0.0.0"], "127.0.0.1"),
        (["--host", "0.0.0.0", "--advertise-host", "localhost"], "localhost"),
    ],
    ids=["wildcard-bind", "advertise-host"],
)
def test_gossip_advertises_a_host_clients_can_dial(
    own_server: Callable[..., ServerProcess],
    library: Library,
    flags: list[str],
    advertised: str,
) -> None:
    # EventStoreDB (ClusterVNode.GetGossipAdvertiseInfo): a single node bound to 0.0.0.0
    # advertises 127.0.0.1 unless NodeHostAdvertiseAs names a host; never the wildcard.
    server = own_server(None, *flags)
    port = int(server.uri.partition("?")[0].rpartition(":")[2])
    with SyncClient(library, library.uri(f"esdb://127.0.0.1:{port}?Tls=false")) as direct:
        members = direct.read_gossip()
    assert [(member.address, member.port) for member in members] == [(advertised, port)]

    # The ready line names the advertised host too, and discovery through it connects.
    assert server.uri.startswith(f"esdb://{advertised}:{port}")
    with SyncClient(library, library.uri(server.uri, discover=True)) as discovered:
        stream = stream_name("es-dev-gossip")
        events = new_events(1)
        discovered.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
        assert ids(discovered.get_stream(stream)) == ids(events)
