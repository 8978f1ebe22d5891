"""Builds the grpc.aio server: the EventStoreDB services over one `EventStore`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from esdbclient.protos.Grpc import gossip_pb2_grpc, persistent_pb2_grpc

from embedded.eventstore.cluster_services import (
    GossipService,
    PersistentSubscriptionsService,
    default_advertise_host,
)
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.streams_service import StreamsService, add_streams_service
from shared.process.throttled_log import ThrottledWarning

MAX_MESSAGE_BYTES = 17 * 1024 * 1024  # what esdbclient accepts; grpcio's default is 4 MiB

SERVER_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # grpcio sets SO_REUSEPORT by default: a second server would share a port instead of failing.
    ("grpc.so_reuseport", 0),
    # Clients that keep connections alive with pings must not be cut off for "too many pings".
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
)


log = logging.getLogger("embedded.eventstore")

UNDECODABLE_LOG_INTERVAL_S = 10.0  # one log line per interval however many junk requests arrive


class _Undecodable:
    """Stands for a request that is not a valid protobuf message of the method's type."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class UndecodableRequests(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Junk request bytes are INVALID_ARGUMENT, with a throttled log line, not UNKNOWN.

    grpcio would log a traceback and answer UNKNOWN (unary requests) or let the handler fail
    (streamed requests). The deserializer returns a marker instead of raising; the handler is
    wrapped so the marker aborts the call.
    """

    def __init__(self) -> None:
        self._undecodable = ThrottledWarning(
            log, "undecodable request to %s from %s: %s", interval_s=UNDECODABLE_LOG_INTERVAL_S
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        method = details.method

        def tolerant(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception as error:  # protobuf's DecodeError, or worse
                return _Undecodable(error)

        if handler.request_streaming:
            kind = "stream_stream" if handler.response_streaming else "stream_unary"
            behaviour = self._streamed(getattr(handler, kind), method, handler.response_streaming)
        else:
            kind = "unary_stream" if handler.response_streaming else "unary_unary"
            behaviour = self._single(getattr(handler, kind), method, handler.response_streaming)
        return handler._replace(request_deserializer=tolerant, **{kind: behaviour})

    async def _refuse(
        self, context: grpc.aio.ServicerContext, method: str, bad: _Undecodable
    ) -> None:
        self._undecodable.warn(method, context.peer(), bad.error)
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"Request to {method} is not a valid message."
        )

    def _streamed(self, behaviour: Any, method: str, streaming: bool) -> Any:
        """grpc.aio tells coroutines from async generators by the function: one of each."""

        def decoded(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            async def checked() -> AsyncIterator[Any]:
                async for request in requests:
                    if isinstance(request, _Undecodable):
                        await self._refuse(context, method, request)
                    yield request

            return checked()

        if streaming:

            async def checked_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                async for response in behaviour(decoded(requests, context), context):
                    yield response

            return checked_stream

        async def checked(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await behaviour(decoded(requests, context), context)

        return checked

    def _single(self, behaviour: Any, method: str, streaming: bool) -> Any:
        if streaming:

            async def checked_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, _Undecodable):
                    await self._refuse(context, method, request)
                async for response in behaviour(request, context):
                    yield response

            return checked_stream

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                await self._refuse(context, method, request)
            return await behaviour(request, context)

        return checked


class BindError(OSError):
    """The address could not be bound (port in use, bad host, ...)."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    store: EventStore
    host: str
    port: int

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"esdb://{host}:{self.port}?Tls=false"

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting calls, end running ones (subscriptions) after `grace`, close storage."""
        await self.server.stop(grace)
        await self.store.close()


async def start_server(
    store: EventStore, host: str, port: int, advertise_host: str | None = None
) -> RunningServer:
    """Bind `host:port` (0: any free port) and start serving; gossip and `uri` name
    `advertise_host` (default: see `default_advertise_host`), the address clients dial."""
    advertised = advertise_host or default_advertise_host(host)
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[UndecodableRequests()])
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:  # grpcio raises RuntimeError when it cannot bind
        raise BindError(str(error)) from error
    if bound == 0:
        raise BindError(f"cannot bind {address}")
    add_streams_service(StreamsService(store), server)
    gossip_pb2_grpc.add_GossipServicer_to_server(GossipService(advertised, bound), server)
    persistent_pb2_grpc.add_PersistentSubscriptionsServicer_to_server(
        PersistentSubscriptionsService(), server
    )
    await server.start()
    return RunningServer(server, store, advertised, bound)
