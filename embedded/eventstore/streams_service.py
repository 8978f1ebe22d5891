"""`event_store.client.streams.Streams`: Read, Append, BatchAppend, Delete and Tombstone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import grpc.aio
from esdbclient.protos.Grpc import shared_pb2, streams_pb2, streams_pb2_grpc

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
from embedded.eventstore.records import ProposedEvent, WriteResult, append_size
from embedded.eventstore.subscriptions import subscribe

type Context = grpc.aio.ServicerContext


# What unfinished BatchAppend chunks may hold. Each batch is refused once past MAX_APPEND_SIZE, as
# EventStoreDB does; these also bound how many batches one call keeps open and what all calls on
# one connection buffer together (EventStoreDB only expires unfinished batches after a timeout).
MAX_OPEN_BATCHES_PER_CALL = 32
MAX_BUFFERED_BYTES_PER_CONNECTION = 16 * MAX_APPEND_SIZE
_REFUSED_REMEMBERED = 1024  # correlation ids whose later chunks are ignored


@dataclass
class _Batch:
    """The chunks of one BatchAppend transaction (same correlation id), until `is_final`."""

    first: streams_pb2.BatchAppendReq
    received: float
    messages: list[streams_pb2.BatchAppendReq.ProposedMessage] = field(default_factory=list)
    size: int = 0  # as `ProposedEvent.size` counts it, before the messages are checked


def _chunk_size(request: streams_pb2.BatchAppendReq) -> int:
    return sum(
        append_size(message.data, message.custom_metadata, message.metadata.get("type", ""))
        for message in request.proposed_messages
    )


class StreamsService(streams_pb2_grpc.StreamsServicer):
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._buffered: dict[str, int] = {}  # unfinished BatchAppend bytes, by connection (peer)

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
        refused: dict[bytes, None] = {}  # ordered set: the oldest is forgotten first
        peer = context.peer()
        try:
            async for request in request_iterator:
                key = request.correlation_id.SerializeToString()
                if key in refused:
                    continue  # EventStoreDB ignores chunks of a batch it has answered
                batch = pending.get(key)
                if batch is None:
                    batch = _Batch(request, time.monotonic())
                    if len(pending) >= MAX_OPEN_BATCHES_PER_CALL:
                        yield self._refuse(batch, key, refused, _too_many_open_batches())
                        continue
                    pending[key] = batch
                size = _chunk_size(request)
                if batch.size + size > MAX_APPEND_SIZE:
                    self._release(peer, pending.pop(key).size)
                    yield self._refuse(batch, key, refused, None)
                    continue
                if self._buffered.get(peer, 0) + size > MAX_BUFFERED_BYTES_PER_CONNECTION:
                    self._release(peer, pending.pop(key).size)
                    yield self._refuse(batch, key, refused, _connection_buffer_full())
                    continue
                batch.size += size
                self._buffered[peer] = self._buffered.get(peer, 0) + size
                batch.messages.extend(request.proposed_messages)
                if request.is_final:
                    del pending[key]
                    self._release(peer, batch.size)
                    yield await self._append_batch(batch)
        finally:
            self._release(peer, sum(batch.size for batch in pending.values()))

    def _release(self, peer: str, size: int) -> None:
        left = self._buffered.get(peer, 0) - size
        if left > 0:
            self._buffered[peer] = left
        else:
            self._buffered.pop(peer, None)

    @staticmethod
    def _refuse(
        batch: _Batch, key: bytes, refused: dict[bytes, None], reason: str | None
    ) -> streams_pb2.BatchAppendResp:
        """Answer a batch now, ignore its later chunks (reason None: too big, as EventStoreDB)."""
        refused[key] = None
        if len(refused) > _REFUSED_REMEMBERED:
            del refused[next(iter(refused))]
        options = batch.first.options
        try:
            answer = BatchAnswer(
                batch.first,
                wire.stream_name(options.stream_identifier),
                wire.expected_revision(options, "stream_position"),
            )
        except RpcFailure:
            answer = BatchAnswer(batch.first, None, None)
        if reason is None:
            return answer.too_big()
        return answer.error(
            grpc.StatusCode.RESOURCE_EXHAUSTED, reason, shared_pb2.BadRequest(message=reason)
        )

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


def _too_many_open_batches() -> str:
    limit = MAX_OPEN_BATCHES_PER_CALL
    return f"Too many unfinished batches in one BatchAppend call (at most {limit})."


def _connection_buffer_full() -> str:
    return (
        "Unfinished batches on this connection hold too much"
        f" (at most {MAX_BUFFERED_BYTES_PER_CONNECTION} bytes)."
    )


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
