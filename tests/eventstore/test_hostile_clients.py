"""Hostile clients must not stall or exhaust the server for everybody else.

Found by fuzzing (issue 11): a catastrophic filter regex froze the whole server, unfinished
BatchAppend chunks were buffered without limit, and junk protobuf bytes were answered UNKNOWN
with a traceback each time. Each test asserts the server's answer and that it still serves
others; no timing thresholds (bounds are only there so a failure ends).
"""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import Iterable

import grpc
import pytest
from esdbclient import AsyncEventStoreDBClient, NewEvent, StreamState
from esdbclient.common import construct_recorded_event
from esdbclient.protos.Grpc import shared_pb2, streams_pb2, streams_pb2_grpc
from esdbclient.streams import BaseStreamsService

from embedded.eventstore.append_answers import MAX_APPEND_SIZE
from embedded.eventstore.streams_service import (
    MAX_BUFFERED_BYTES_PER_CONNECTION,
    MAX_OPEN_BATCHES_PER_CALL,
)
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


class BatchAppendCall:
    """A raw BatchAppend call whose requests the test sends one by one."""

    def __init__(self, raw_streams: streams_pb2_grpc.StreamsStub) -> None:
        self._requests: queue.Queue[streams_pb2.BatchAppendReq | None] = queue.Queue()
        self.responses = raw_streams.BatchAppend(iter(self._requests.get, None), timeout=STUCK_S)

    def send(self, request: streams_pb2.BatchAppendReq) -> None:
        self._requests.put(request)

    def answer(self) -> streams_pb2.BatchAppendResp:
        response: streams_pb2.BatchAppendResp = next(self.responses)
        return response

    def close(self) -> None:
        self._requests.put(None)
        self.responses.cancel()


def chunk(stream: str, correlation_id: uuid.UUID, data_bytes: int) -> streams_pb2.BatchAppendReq:
    """One unfinished chunk of a batch: one event with `data_bytes` of data."""
    (event,) = new_events(1)
    big = NewEvent(type=event.type, data=b"x" * data_bytes)
    request = BaseStreamsService._construct_batch_append_req(
        stream_name=stream,
        current_version=StreamState.ANY,
        events=[big],
        correlation_id=correlation_id,
    )
    request.is_final = False
    return request


def stream_is_missing(raw_streams: streams_pb2_grpc.StreamsStub, stream: str) -> bool:
    request = BaseStreamsService._construct_read_request(stream_name=stream)
    contents = [
        response.WhichOneof("content") for response in raw_streams.Read(request, timeout=10)
    ]
    return contents == ["stream_not_found"]


def error_detail(response: streams_pb2.BatchAppendResp, detail: type) -> bool:
    return response.WhichOneof("result") == "error" and response.error.details.Is(detail.DESCRIPTOR)


async def test_batch_over_max_append_size_across_chunks_is_refused_before_it_ends(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncEventStoreDBClient
) -> None:
    """EventStoreDB answers MaximumAppendSizeExceeded as soon as a batch's chunks pass 1 MiB."""
    stream = stream_name("es-hostile-big")
    correlation_id = uuid.uuid4()
    call = BatchAppendCall(raw_streams)
    try:
        for _ in range(5):  # 5 x 256 KiB, never final
            call.send(chunk(stream, correlation_id, 256 * 1024))
        response = call.answer()
    finally:
        call.close()
    assert error_detail(response, shared_pb2.MaximumAppendSizeExceeded), response.error
    assert response.correlation_id.string == str(correlation_id)
    assert stream_is_missing(raw_streams, stream)
    # Others are still served.
    await client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(1)
    )
    assert len(await read_stream(client, stream)) == 1


@pytest.mark.usefixtures("embedded_only")
def test_one_call_keeps_a_bounded_number_of_batches_open(
    raw_streams: streams_pb2_grpc.StreamsStub,
) -> None:
    stream = stream_name("es-hostile-open")
    call = BatchAppendCall(raw_streams)
    last = uuid.uuid4()
    try:
        for _ in range(MAX_OPEN_BATCHES_PER_CALL):
            call.send(chunk(stream, uuid.uuid4(), 16))
        call.send(chunk(stream, last, 16))
        response = call.answer()
    finally:
        call.close()
    assert response.correlation_id.string == str(last)
    assert response.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


@pytest.mark.usefixtures("embedded_only")
async def test_one_connection_buffers_a_bounded_amount_across_calls(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncEventStoreDBClient
) -> None:
    stream = stream_name("es-hostile-conn")
    holder = BatchAppendCall(raw_streams)
    other = BatchAppendCall(raw_streams)  # same channel, so the same connection
    try:
        # Just under 1 MiB each, in as many batches as the connection may buffer.
        almost = MAX_APPEND_SIZE - 64 * 1024
        for _ in range(MAX_BUFFERED_BYTES_PER_CONNECTION // almost):
            holder.send(chunk(stream, uuid.uuid4(), almost))
        # A finished batch behind them: once answered, the server has buffered the others.
        done = uuid.uuid4()
        finished = chunk(stream, done, 16)
        finished.is_final = True
        holder.send(finished)
        assert holder.answer().correlation_id.string == str(done)

        refused_id = uuid.uuid4()
        other.send(chunk(stream, refused_id, almost))
        response = other.answer()
        assert response.correlation_id.string == str(refused_id)
        assert response.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    finally:
        holder.close()
        other.close()
    # The connection's buffer is freed with the call: whole batches are accepted again.
    await client.append_to_stream(stream, current_version=StreamState.ANY, events=new_events(1))
    accepted = BatchAppendCall(raw_streams)
    try:
        again = chunk(stream, uuid.uuid4(), almost)
        again.is_final = True
        accepted.send(again)
        assert accepted.answer().WhichOneof("result") == "success"
    finally:
        accepted.close()


JUNK = b"\xff\xff\xff\x0f"  # a field header with no valid wire type: no message parses it


@pytest.mark.usefixtures("embedded_only")
@pytest.mark.parametrize("method", ["Read", "Append", "BatchAppend", "Delete", "Tombstone"])
async def test_junk_request_bytes_are_invalid_argument(
    raw_channel: grpc.Channel, client: AsyncEventStoreDBClient, method: str
) -> None:
    path = f"/event_store.client.streams.Streams/{method}"
    with pytest.raises(grpc.RpcError) as raised:
        if method == "Read":
            list(raw_channel.unary_stream(path)(JUNK, timeout=STUCK_S))
        elif method == "Append":
            raw_channel.stream_unary(path)(iter([JUNK]), timeout=STUCK_S)
        elif method == "BatchAppend":
            list(raw_channel.stream_stream(path)(iter([JUNK]), timeout=STUCK_S))
        else:
            raw_channel.unary_unary(path)(JUNK, timeout=STUCK_S)
    assert isinstance(raised.value, grpc.Call)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stream = stream_name("es-hostile-junk")
    await client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(1)
    )
    assert len(await read_stream(client, stream)) == 1
