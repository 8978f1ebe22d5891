"""Gossip (a one-node cluster whose only member is the leader) and persistent subscriptions.

Persistent subscriptions are not supported: `List` answers an empty list (as a node without any
does) and every other method answers UNIMPLEMENTED on purpose rather than failing as UNKNOWN.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
import grpc.aio
from esdbclient.protos.Grpc import (
    gossip_pb2,
    gossip_pb2_grpc,
    persistent_pb2,
    persistent_pb2_grpc,
    shared_pb2,
)

from embedded.eventstore.errors import guard_unary
from embedded.eventstore.writer import now_ticks

type Context = grpc.aio.ServicerContext


# A wildcard bind address is no address to dial: advertise the loopback of its family instead.
_LOOPBACK = {4: "127.0.0.1", 6: "::1"}
# What a host name may hold (RFC 1123 labels; `_` too, as container and service names have).
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def default_advertise_host(bind_host: str) -> str:
    """The host gossip tells clients to dial when none is given: the bind host, unless that
    is a wildcard (`0.0.0.0`, `::`, however spelled), which a client cannot dial."""
    address = _ip_address(bind_host)
    if address is not None and address.is_unspecified:
        return _LOOPBACK[address.version]
    return bind_host


def check_advertise_host(host: str) -> str:
    """`host` if clients can be told to dial it (a host name or an IP address, without scheme,
    port or brackets); otherwise ValueError saying what is wrong with it."""
    if not host or host.isspace():
        raise ValueError("must not be empty or blank")
    if any(character.isspace() for character in host):
        raise ValueError(f"{host!r} must not contain whitespace")
    if "://" in host:
        raise ValueError(f"{host!r} is a URI; give only the host name, without a scheme")
    address = _ip_address(host)
    if address is not None:
        if address.is_unspecified:
            raise ValueError(f"{host!r} is a wildcard address, which clients cannot dial")
        return host
    if host.startswith("[") and host.endswith("]") and _ip_address(host[1:-1]) is not None:
        raise ValueError(f"{host!r}: give the IPv6 address without brackets")
    if ":" in host:
        raise ValueError(
            f"{host!r} must not include a port;"
            " the advertised port is the one the server listens on"
        )
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_HOST_NAME.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name or IP address")
    return host


class GossipService(gossip_pb2_grpc.GossipServicer):
    """Answers with one member, the leader, at the advertised `host` and the bound `port`."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.instance_id = str(uuid.uuid4())

    @guard_unary
    async def Read(self, request: shared_pb2.Empty, context: Context) -> gossip_pb2.ClusterInfo:
        member = gossip_pb2.MemberInfo(
            instance_id=shared_pb2.UUID(string=self.instance_id),
            time_stamp=now_ticks(),
            state=gossip_pb2.MemberInfo.VNodeState.Leader,
            is_alive=True,
            http_end_point=gossip_pb2.EndPoint(address=self.host, port=self.port),
        )
        return gossip_pb2.ClusterInfo(members=[member])


async def _unsupported(context: Context) -> NoReturn:
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED,
        "Persistent subscriptions are not supported by embedded-eventstore.",
    )
    raise AssertionError("context.abort() raises")  # pragma: no cover


class PersistentSubscriptionsService(persistent_pb2_grpc.PersistentSubscriptionsServicer):
    @guard_unary
    async def List(
        self, request: persistent_pb2.ListReq, context: Context
    ) -> persistent_pb2.ListResp:
        return persistent_pb2.ListResp()

    async def Create(self, request: Any, context: Context) -> NoReturn:
        await _unsupported(context)

    async def Update(self, request: Any, context: Context) -> NoReturn:
        await _unsupported(context)

    async def Delete(self, request: Any, context: Context) -> NoReturn:
        await _unsupported(context)

    async def GetInfo(self, request: Any, context: Context) -> NoReturn:
        await _unsupported(context)

    async def ReplayParked(self, request: Any, context: Context) -> NoReturn:
        await _unsupported(context)

    async def RestartSubsystem(self, request: Any, context: Context) -> NoReturn:
        await _unsupported(context)

    async def Read(self, request_iterator: Any, context: Context) -> AsyncIterator[Any]:
        await _unsupported(context)
        yield  # pragma: no cover - makes this a (bidi-streaming) async generator
