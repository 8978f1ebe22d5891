"""Appends: positions, revisions, what is stored, size and deadline limits, atomicity."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from esdbclient import NewEvent, StreamState
from esdbclient.exceptions import AppendDeadlineExceeded
from esdbclient.protos.Grpc import streams_pb2_grpc
from esdbclient.streams import BaseStreamsService
from google.protobuf import duration_pb2

from tests.eventstore.clients import AsyncClient, Errors, SyncClient, esdbclient_only
from tests.eventstore.support import (
    Appender,
    data,
    head_position,
    ids,
    is_increasing,
    new_events,
    positions,
    read_my_streams,
    read_stream,
    stream_name,
)

MIB = 1024 * 1024
# Clocks of a real server may drift a little from ours; this only proves `created` is "now".
CLOCK_SLACK = timedelta(minutes=2)


async def test_append_returns_position_of_its_last_event(
    append: Appender, client: AsyncClient
) -> None:
    stream = stream_name()
    first = await append(stream, StreamState.NO_STREAM, new_events(3))
    second = await append(stream, 2, new_events(2))

    stored = await read_stream(client, stream)
    assert [event.stream_position for event in stored] == [0, 1, 2, 3, 4]
    assert stored[2].commit_position == first
    assert stored[4].commit_position == second


async def test_positions_strictly_increase_within_and_across_appends(
    append: Appender, client: AsyncClient
) -> None:
    prefix = stream_name("es-pos")
    a, b = f"{prefix}-a", f"{prefix}-b"
    start = await head_position(client)
    returned = [
        await append(a, StreamState.ANY, new_events(3)),
        await append(b, StreamState.ANY, new_events(4)),
        await append(a, StreamState.ANY, new_events(2)),
    ]
    assert is_increasing(returned)
    assert returned[0] > 0

    in_all = await read_my_streams(client, prefix, after=start)
    assert [event.stream_name for event in in_all] == [a] * 3 + [b] * 4 + [a] * 2
    assert is_increasing(positions(in_all)), "a distinct, increasing position per event"
    assert [in_all[2].commit_position, in_all[6].commit_position, in_all[8].commit_position] == (
        returned
    )


async def test_stored_event_is_what_was_appended(append: Appender, client: AsyncClient) -> None:
    stream = stream_name("es-round-trip-é")
    binary = bytes(range(256)) * 4
    events = [
        NewEvent(
            type="JsonThing",
            data=json.dumps({"amount_minor": 1999}).encode(),
            metadata=b'{"correlation_id": "c-1"}',
        ),
        NewEvent(
            type="BinaryThing",
            data=binary,
            metadata=b"\x00\xff raw",
            content_type="application/octet-stream",
        ),
        NewEvent(type="EmptyThing", data=b"", metadata=b""),
    ]
    before = datetime.now(UTC)
    await append(stream, StreamState.NO_STREAM, events)
    after = datetime.now(UTC)

    stored = await read_stream(client, stream)
    assert ids(stored) == ids(events)
    assert [event.type for event in stored] == ["JsonThing", "BinaryThing", "EmptyThing"]
    assert [event.data for event in stored] == [events[0].data, binary, b""]
    assert [event.metadata for event in stored] == [events[0].metadata, b"\x00\xff raw", b""]
    assert [event.content_type for event in stored] == [
        "application/json",
        "application/octet-stream",
        "application/json",
    ]
    assert {event.stream_name for event in stored} == {stream}
    for event in stored:
        assert event.recorded_at is not None, "`created` must be .NET ticks since the epoch"
        assert event.recorded_at.tzinfo is not None
        assert before - CLOCK_SLACK <= event.recorded_at <= after + CLOCK_SLACK


async def test_event_just_under_the_size_limit_round_trips(
    client: AsyncClient,
) -> None:
    stream = stream_name()
    payload = uuid.uuid4().bytes * (900 * 1024 // 16)
    event = NewEvent(type="Large", data=payload, content_type="application/octet-stream")
    await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=[event])

    (stored,) = await read_stream(client, stream)
    assert stored.data == payload


async def test_sync_client_single_event_and_sequence_both_append(
    sync_client: SyncClient, client: AsyncClient
) -> None:
    stream = stream_name()
    single = sync_client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(1)[0]
    )
    batch = sync_client.append_to_stream(stream, current_version=0, events=new_events(2))

    stored = await read_stream(client, stream)
    assert [event.stream_position for event in stored] == [0, 1, 2]
    assert [stored[0].commit_position, stored[2].commit_position] == [single, batch]


@pytest.mark.parametrize(
    "sizes",
    # 5 MiB is past grpcio's default 4 MiB message limit: still the append-size answer.
    [[MIB + 1024], [400 * 1024] * 3, [5 * MIB]],
    ids=["one", "several", "past-grpc-default-limit"],
)
async def test_append_over_one_mib_is_refused_and_writes_nothing(
    client: AsyncClient, sync_client: SyncClient, errors: Errors, sizes: list[int]
) -> None:
    stream = stream_name()
    events = [
        NewEvent(type="Huge", data=b"x" * size, content_type="application/octet-stream")
        for size in sizes
    ]
    with pytest.raises(errors.MaximumAppendSizeExceededError):
        await client.append_to_stream(stream, current_version=StreamState.ANY, events=events)
    with pytest.raises(errors.MaximumAppendSizeExceededError):
        sync_client.append_to_stream(stream, current_version=StreamState.ANY, events=events)

    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)


@esdbclient_only
async def test_append_with_a_past_deadline_is_refused_and_writes_nothing(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncClient, errors: Errors
) -> None:
    # The client always sends a deadline equal to its own gRPC timeout, so it can never reach
    # the server already expired; the raw request can.
    stream = stream_name()
    request = BaseStreamsService._construct_batch_append_req(
        stream_name=stream,
        current_version=StreamState.ANY,
        events=new_events(2),
        correlation_id=uuid.uuid4(),
    )
    request.options.deadline.CopyFrom(duration_pb2.Duration(seconds=0, nanos=0))
    responses = raw_streams.BatchAppend(iter([request]), timeout=10)
    try:
        response = next(responses)
    finally:
        responses.cancel()

    with pytest.raises(AppendDeadlineExceeded):
        BaseStreamsService._convert_batch_append_resp(response, stream, StreamState.ANY)
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)


async def test_failed_append_writes_none_of_its_events(
    append: Appender, client: AsyncClient, errors: Errors
) -> None:
    stream = stream_name()
    accepted = new_events(2)
    await append(stream, StreamState.NO_STREAM, accepted)
    with pytest.raises(errors.WrongCurrentVersion):
        await append(stream, 0, new_events(3, batch="rejected"))

    stored = await read_stream(client, stream)
    assert ids(stored) == ids(accepted)
    assert all("batch" not in data(event) for event in stored)


@esdbclient_only
async def test_raw_append_answers_with_success_revision_and_position(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncClient
) -> None:
    stream = stream_name()
    requests = BaseStreamsService._generate_append_reqs(
        stream, StreamState.NO_STREAM, new_events(3)
    )
    response = raw_streams.Append(requests, timeout=10)

    assert response.WhichOneof("result") == "success"
    assert response.success.current_revision == 2
    stored = await read_stream(client, stream)
    assert response.success.position.commit_position == stored[-1].commit_position
