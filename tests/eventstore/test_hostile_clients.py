"""Hostile clients must not stall or exhaust the server for everybody else.

Found by fuzzing (issue 11): a catastrophic filter regex froze the whole server, unfinished
BatchAppend chunks were buffered without limit, and junk protobuf bytes were answered UNKNOWN
with a traceback each time. Each test asserts the server's answer and that it still serves
others; no timing thresholds (bounds are only there so a failure ends).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

import grpc
import pytest
from esdbclient import AsyncEventStoreDBClient, NewEvent, StreamState
from esdbclient.common import construct_recorded_event
from esdbclient.protos.Grpc import streams_pb2, streams_pb2_grpc
from esdbclient.streams import BaseStreamsService

from tests.eventstore.support import head_position, new_events, read_stream, stream_name

# Generous bounds: only reached when the server is stuck.
STUCK_S = 30.0
RUN_OF_A = 36  # a backtracking engine needs ~10 s for 28, x4 per 2 more: here about 40 minutes


@pytest.fixture
def embedded_only(external_eventstore: bool) -> None:
    if external_eventstore:
        pytest.skip("checks a limit of the embedded server (EventStoreDB accepts this)")


def filtered_read(start: int, regex: str) -> streams_pb2.ReadReq:
    """A forwards `$all` read from `start`, filtered by event type with `regex` as sent."""
    request = BaseStreamsService._construct_read_request(
        commit_position=start, limit=1000, filter_include=["placeholder"]
    )
    request.options.filter.event_type.CopyFrom(
        streams_pb2.ReadReq.Options.FilterOptions.Expression(regex=regex)
    )
    return request


def event_types(responses: Iterable[streams_pb2.ReadResp]) -> list[str]:
    found = []
    for response in responses:
        if response.WhichOneof("content") == "event":
            event = construct_recorded_event(response.event)
            assert event is not None
            found.append(event.type)
    return found


def read_error(
    raw_streams: streams_pb2_grpc.StreamsStub, request: streams_pb2.ReadReq
) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as raised:
        list(raw_streams.Read(request, timeout=STUCK_S))
    assert isinstance(raised.value, grpc.Call)
    return raised.value


async def test_catastrophic_filter_regex_does_not_stall_other_clients(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncEventStoreDBClient
) -> None:
    start = await head_position(client)
    hostile_stream = stream_name("es-hostile")
    tail = f"-{uuid.uuid4().hex}"  # makes `^(a+)+$` fail only after the whole run of a's
    events = [NewEvent(type="a" * RUN_OF_A + tail, data=b"{}"), NewEvent(type="a" * 8, data=b"{}")]
    await client.append_to_stream(
        hostile_stream, current_version=StreamState.NO_STREAM, events=events
    )

    call = raw_streams.Read(filtered_read(start, "^(a+)+$"), timeout=STUCK_S * 2)
    hostile = asyncio.create_task(asyncio.to_thread(event_types, call))
    try:
        # Another client, meanwhile: a write and a read of its own must be answered.
        other = stream_name("es-hostile-other")
        written = new_events(1)
        await client.append_to_stream(
            other, current_version=StreamState.NO_STREAM, events=written, timeout=STUCK_S
        )
        read_back = await read_stream(client, other, timeout=STUCK_S)
        assert [event.id for event in read_back] == [written[0].id]
        # And the hostile read itself is answered, with the right events.
        found = await asyncio.wait_for(hostile, STUCK_S * 2)
    finally:
        call.cancel()  # a stuck server must not keep this test's thread waiting
    assert "a" * 8 in found
    assert "a" * RUN_OF_A + tail not in found


@pytest.mark.usefixtures("embedded_only")
async def test_filter_regex_with_backreference_is_refused_clearly(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncEventStoreDBClient
) -> None:
    """RE2 has no backreferences: refused as EventStoreDB refuses a regex it cannot build."""
    start = await head_position(client)
    error = read_error(raw_streams, filtered_read(start, r"^(a)\1$"))
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert "regex" in (error.details() or "")


async def test_invalid_filter_regex_is_answered_as_eventstoredb_does(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncEventStoreDBClient
) -> None:
    """`new Regex("(")` throws inside EventStoreDB's Streams.Read: gRPC UNKNOWN."""
    start = await head_position(client)
    error = read_error(raw_streams, filtered_read(start, "(unbalanced"))
    assert error.code() == grpc.StatusCode.UNKNOWN
    # The server still serves filtered reads.
    still = raw_streams.Read(filtered_read(start, "^no-such-type$"), timeout=STUCK_S)
    assert event_types(still) == []
