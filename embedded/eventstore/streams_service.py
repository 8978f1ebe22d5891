"""`event_store.client.streams.Streams`: Read, Append, BatchAppend, Delete and Tombstone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import grpc.aio
from esdbclient.protos.Grpc import streams_pb2, streams_pb2_grpc

from embedded.eventstore import wire
from embedded.eventstore.append_answers import (
    MAX_APPEND_SIZE,
    BatchAnswer,
    append_success,
    append_wrong_expected_version,
    batch_deadline,
)
from embedded.eventstore.errors import (
    RpcFailure,
    delete_wrong_expected_version,
    guard_stream,
    guard_unary,
    invalid_argument,
    maximum_append_size_exceeded,
    stream_deleted,
)
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.expected_revision import Expected
from embedded.eventstore.reads import parse_read_request, read_all, read_stream
from embedded.eventstore.records import ProposedEvent, WriteResult
from embedded.eventstore.subscriptions import subscribe

type Context = grpc.aio.ServicerContext


@dataclass
class _Batch:
    """The chunks of one BatchAppend transaction (same correlation id), until `is_final`."""

    first: streams_pb2.BatchAppendReq
    received: float
    messages: list[streams_pb2.BatchAppendReq.ProposedMessage] = field(default_factory=list)


class StreamsService(streams_pb2_grpc.StreamsServicer):
    def __init__(self, store: EventStore) -> None:
        self.store = store

    @guard_stream
    async def Read(
        self, request: streams_pb2.ReadReq, context: Context
    ) -> AsyncIterator[streams_pb2.ReadResp | bytes]:
        """Responses come a page at a time; events are already encoded (see `read_encoding`)."""
        read = parse_read_request(request)
        if read.count is None:
            pages = subscribe(self.store, read)
        elif read.stream is not None:
            pages = read_stream(self.store, read)
        else:
            pages = read_all(self.store, read)
        async for page in pages:
            for message in page:
                yield message

    @guard_unary
    async def Append(
        self, request_iterator: AsyncIterator[streams_pb2.AppendReq], context: Context
    ) -> streams_pb2.AppendResp:
        options: streams_pb2.AppendReq.Options | None = None
        events: list[ProposedEvent] = []
        size = 0
        async for request in request_iterator:
            content = request.WhichOneof("content")
            if options is None:
                if content != "options":
                    raise invalid_argument("The first AppendReq must carry the options.")
                options = request.options
                continue
            if content != "proposed_message":
                raise invalid_argument("Only the first AppendReq may carry options.")
            event = wire.proposed_event(request.proposed_message)
            size += event.size()
            if size > MAX_APPEND_SIZE:
                raise maximum_append_size_exceeded(MAX_APPEND_SIZE)
            events.append(event)
        if options is None:
            raise invalid_argument("AppendReq options are required.")
        stream = wire.stream_name(options.stream_identifier)
        expected = wire.expected_revision(options, "revision")
        result = await self.store.append(stream, expected, events, None)
        if result.kind == "deleted":
            raise stream_deleted(stream)
        if result.kind == "wrong_version":
            return append_wrong_expected_version(result.revision, expected)
        return append_success(result)

    @guard_stream
    async def BatchAppend(
        self, request_iterator: AsyncIterator[streams_pb2.BatchAppendReq], context: Context
    ) -> AsyncIterator[streams_pb2.BatchAppendResp]:
        pending: dict[bytes, _Batch] = {}
        async for request in request_iterator:
            key = request.correlation_id.SerializeToString()
            batch = pending.setdefault(key, _Batch(request, time.monotonic()))
            batch.messages.extend(request.proposed_messages)
            if request.is_final:
                del pending[key]
                yield await self._append_batch(batch)

    async def _append_batch(self, batch: _Batch) -> streams_pb2.BatchAppendResp:
        options = batch.first.options
        try:
            stream: str | None = wire.stream_name(options.stream_identifier)
            expected: Expected | None = wire.expected_revision(options, "stream_position")
        except RpcFailure as failure:
            return BatchAnswer(batch.first, None, None).bad_request(failure.details)
        answer = BatchAnswer(batch.first, stream, expected)
        assert stream is not None and expected is not None
        try:
            events = [wire.proposed_event(message) for message in batch.messages]
        except RpcFailure as failure:
            return answer.bad_request(failure.details)
        if sum(event.size() for event in events) > MAX_APPEND_SIZE:
            return answer.too_big()
        deadline = batch_deadline(options, batch.received)
        if deadline is not None and deadline <= time.monotonic():
            return answer.timeout()
        result = await self.store.append(stream, expected, events, deadline)
        if result.kind == "deleted":
            return answer.stream_deleted()
        if result.kind == "wrong_version":
            return answer.wrong_expected_version(result.revision)
        if result.kind == "timeout":
            return answer.timeout()
        return answer.success(result)

    @guard_unary
    async def Delete(
        self, request: streams_pb2.DeleteReq, context: Context
    ) -> streams_pb2.DeleteResp:
        stream, expected = _target(request.options)
        result = _checked(await self.store.soft_delete(stream, expected), stream, expected)
        response = streams_pb2.DeleteResp()
        _set_position(response, result)
        return response

    @guard_unary
    async def Tombstone(
        self, request: streams_pb2.TombstoneReq, context: Context
    ) -> streams_pb2.TombstoneResp:
        stream, expected = _target(request.options)
        result = _checked(await self.store.tombstone(stream, expected), stream, expected)
        response = streams_pb2.TombstoneResp()
        _set_position(response, result)
        return response


def _read_response_bytes(response: streams_pb2.ReadResp | bytes) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_streams_service(service: StreamsService, server: grpc.aio.Server) -> None:
    """`streams_pb2_grpc.add_StreamsServicer_to_server`, except that Read sends bytes as is."""
    handlers = {
        "Read": grpc.unary_stream_rpc_method_handler(
            service.Read,
            request_deserializer=streams_pb2.ReadReq.FromString,
            response_serializer=_read_response_bytes,
        ),
        "Append": grpc.stream_unary_rpc_method_handler(
            service.Append,
            request_deserializer=streams_pb2.AppendReq.FromString,
            response_serializer=streams_pb2.AppendResp.SerializeToString,
        ),
        "Delete": grpc.unary_unary_rpc_method_handler(
            service.Delete,
            request_deserializer=streams_pb2.DeleteReq.FromString,
            response_serializer=streams_pb2.DeleteResp.SerializeToString,
        ),
        "Tombstone": grpc.unary_unary_rpc_method_handler(
            service.Tombstone,
            request_deserializer=streams_pb2.TombstoneReq.FromString,
            response_serializer=streams_pb2.TombstoneResp.SerializeToString,
        ),
        "BatchAppend": grpc.stream_stream_rpc_method_handler(
            service.BatchAppend,
            request_deserializer=streams_pb2.BatchAppendReq.FromString,
            response_serializer=streams_pb2.BatchAppendResp.SerializeToString,
        ),
    }
    name = "event_store.client.streams.Streams"
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


def _target(
    options: streams_pb2.DeleteReq.Options | streams_pb2.TombstoneReq.Options,
) -> tuple[str, Expected]:
    return wire.stream_name(options.stream_identifier), wire.expected_revision(options, "revision")


def _checked(result: WriteResult, stream: str, expected: Expected) -> WriteResult:
    """Delete and tombstone answer failures with FAILED_PRECONDITION and EventStoreDB's texts."""
    if result.kind == "deleted":
        raise stream_deleted(stream)
    if result.kind == "wrong_version":
        raise delete_wrong_expected_version(stream, expected, result.revision)
    return result


def _set_position(
    response: streams_pb2.DeleteResp | streams_pb2.TombstoneResp, result: WriteResult
) -> None:
    if result.position is None:
        response.no_position.SetInParent()
    else:
        response.position.commit_position = result.position
        response.position.prepare_position = result.position
