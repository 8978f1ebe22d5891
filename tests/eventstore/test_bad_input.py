"""Requests no client would send get a deliberate gRPC error, never UNKNOWN.

UNKNOWN is what grpcio sends for an exception the handler did not catch. A real EventStoreDB is
not held to this for malformed requests (it lets some of them escape as UNKNOWN itself), so those
tests run against the embedded server only; the size limit applies to both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from esdbclient import NewEvent, StreamState
from esdbclient.protos.Grpc import shared_pb2, streams_pb2, streams_pb2_grpc
from esdbclient.streams import BaseStreamsService

from tests.eventstore.clients import AsyncClient, Errors, esdbclient_only
from tests.eventstore.support import new_events, read_stream, stream_name

MIB = 1024 * 1024
NOT_DELIBERATE = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.OK}


@pytest.fixture
def embedded_only(external_eventstore: bool) -> None:
    if external_eventstore:
        pytest.skip("a real EventStoreDB may answer malformed requests with UNKNOWN")


def append_requests(stream: str, events: list[NewEvent]) -> list[streams_pb2.AppendReq]:
    return list(BaseStreamsService._generate_append_reqs(stream, StreamState.ANY, events))


def refused(call: Callable[[], object]) -> grpc.StatusCode:
    """Calls ``call`` (draining a streamed answer) and returns the code of the error it raises."""
    with pytest.raises(grpc.RpcError) as raised:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    error = raised.value
    assert isinstance(error, grpc.Call)
    return error.code()


@esdbclient_only
async def test_oversized_single_event_append_is_refused_deliberately(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncClient, errors: Errors
) -> None:
    stream = stream_name("es-bad")
    (event,) = new_events(1)
    huge = NewEvent(type=event.type, data=b"y" * (MIB + 1024), id=event.id)
    code = refused(lambda: raw_streams.Append(iter(append_requests(stream, [huge])), timeout=10))
    assert code not in NOT_DELIBERATE
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)


@pytest.mark.usefixtures("embedded_only")
def test_append_without_options_is_refused(raw_streams: streams_pb2_grpc.StreamsStub) -> None:
    messages = append_requests(stream_name("es-bad"), new_events(2))[1:]
    assert refused(lambda: raw_streams.Append(iter(messages), timeout=10)) not in NOT_DELIBERATE


@pytest.mark.usefixtures("embedded_only")
def test_append_with_no_messages_is_refused(raw_streams: streams_pb2_grpc.StreamsStub) -> None:
    assert refused(lambda: raw_streams.Append(iter([]), timeout=10)) not in NOT_DELIBERATE


@pytest.mark.usefixtures("embedded_only")
@esdbclient_only
async def test_append_without_expected_revision_is_refused(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncClient, errors: Errors
) -> None:
    stream = stream_name("es-bad")
    messages = append_requests(stream, new_events(1))
    messages[0].options.ClearField("expected_stream_revision")
    assert refused(lambda: raw_streams.Append(iter(messages), timeout=10)) not in NOT_DELIBERATE
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)


@pytest.mark.usefixtures("embedded_only")
@esdbclient_only
async def test_append_with_malformed_event_id_is_refused_and_writes_nothing(
    raw_streams: streams_pb2_grpc.StreamsStub, client: AsyncClient, errors: Errors
) -> None:
    stream = stream_name("es-bad")
    messages = append_requests(stream, new_events(2))
    messages[2].proposed_message.id.CopyFrom(shared_pb2.UUID(string="not-a-uuid"))
    assert refused(lambda: raw_streams.Append(iter(messages), timeout=10)) not in NOT_DELIBERATE
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)


@pytest.mark.usefixtures("embedded_only")
def test_read_without_options_is_refused(raw_streams: streams_pb2_grpc.StreamsStub) -> None:
    code = refused(lambda: raw_streams.Read(streams_pb2.ReadReq(), timeout=10))
    assert code not in NOT_DELIBERATE


@pytest.mark.usefixtures("embedded_only")
def test_read_of_stream_without_revision_option_is_refused(
    raw_streams: streams_pb2_grpc.StreamsStub,
) -> None:
    request = BaseStreamsService._construct_read_request(stream_name=stream_name("es-bad"))
    request.options.stream.ClearField("revision_option")
    code = refused(lambda: raw_streams.Read(request, timeout=10))
    assert code not in NOT_DELIBERATE


@pytest.mark.usefixtures("embedded_only")
def test_batch_append_without_options_is_answered_deliberately(
    raw_streams: streams_pb2_grpc.StreamsStub,
) -> None:
    request = BaseStreamsService._construct_batch_append_req(
        stream_name=stream_name("es-bad"),
        current_version=StreamState.ANY,
        events=new_events(1),
        correlation_id=uuid.uuid4(),
    )
    request.ClearField("options")
    responses = raw_streams.BatchAppend(iter([request]), timeout=10)
    try:
        response = next(responses)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        assert error.code() not in NOT_DELIBERATE
    else:
        assert response.WhichOneof("result") == "error"
        assert response.error.code != grpc.StatusCode.UNKNOWN.value[0]
    finally:
        responses.cancel()
