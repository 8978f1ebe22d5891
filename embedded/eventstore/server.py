"""Builds the grpc.aio server: the EventStoreDB services over one `EventStore`."""

from __future__ import annotations

from dataclasses import dataclass

import grpc.aio
from esdbclient.protos.Grpc import gossip_pb2_grpc, persistent_pb2_grpc

from embedded.eventstore.cluster_services import (
    GossipService,
    PersistentSubscriptionsService,
    default_advertise_host,
)
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.streams_service import StreamsService, add_streams_service

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
    server = grpc.aio.server(options=SERVER_OPTIONS)
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
