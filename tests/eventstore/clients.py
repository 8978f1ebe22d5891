"""The Python clients the suite runs through: esdbclient and its successor kurrentdbclient.

Tests speak esdbclient's vocabulary (its ``NewEvent`` and ``StreamState``). ``AsyncClient`` and
``SyncClient`` hand each library its own types and URI scheme, so a test asserts the same about
the server through either client. Errors stay each library's own classes: ``Library.errors``
names them under esdbclient's names, so a test expects exactly what that client raises.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from types import SimpleNamespace, TracebackType
from typing import Any, Self
from unittest import mock

import esdbclient
import esdbclient.common
import esdbclient.exceptions
import esdbclient.gossip
import esdbclient.persistent
import pytest
from esdbclient import NewEvent, StreamState
from google.protobuf import (
    any_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
)


def _import_kurrentdbclient_beside_esdbclient() -> None:
    """Imports kurrentdbclient with its generated protobuf classes in a pool of their own.

    Both libraries generate the same proto package (``event_store.client``) into protobuf's
    default pool, so whichever is imported second fails with "duplicate symbol" - and the
    project imports esdbclient everywhere. Which pool a class lives in does not change the wire
    format or the full names (``Any.Is`` still matches). kurrentdbclient's streams module builds
    ``Empty`` and ``Duration`` itself; upb only nests messages of one pool, so it gets those
    from the private pool as well.
    """
    if "kurrentdbclient" in sys.modules:
        return
    pool = descriptor_pool.DescriptorPool()
    for well_known in (any_pb2, duration_pb2, empty_pb2, struct_pb2, timestamp_pb2):
        pool.AddSerializedFile(well_known.DESCRIPTOR.serialized_pb)
    with mock.patch.object(descriptor_pool, "Default", return_value=pool):
        streams = importlib.import_module("kurrentdbclient.streams")
        generated = importlib.import_module("kurrentdbclient.protos.Grpc")
        for module in pkgutil.iter_modules(generated.__path__):
            importlib.import_module(f"{generated.__name__}.{module.name}")
        importlib.import_module("kurrentdbclient")

    def private(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    vars(streams).update(
        empty_pb2=SimpleNamespace(Empty=private("google.protobuf.Empty")),
        duration_pb2=SimpleNamespace(Duration=private("google.protobuf.Duration")),
    )


_import_kurrentdbclient_beside_esdbclient()

import kurrentdbclient  # noqa: E402
import kurrentdbclient.common  # noqa: E402
import kurrentdbclient.exceptions  # noqa: E402
import kurrentdbclient.gossip  # noqa: E402
import kurrentdbclient.persistent  # noqa: E402

Version = int | StreamState
RecordedEvent = esdbclient.RecordedEvent | kurrentdbclient.RecordedEvent
AsyncReadResponse = esdbclient.AsyncReadResponse | kurrentdbclient.AsyncReadResponse
AsyncSubscription = (
    esdbclient.common.AbstractAsyncCatchupSubscription
    | kurrentdbclient.common.AbstractAsyncCatchupSubscription
)
SyncSubscription = (
    esdbclient.common.AbstractCatchupSubscription
    | kurrentdbclient.common.AbstractCatchupSubscription
)
ClusterMember = esdbclient.gossip.ClusterMember | kurrentdbclient.gossip.ClusterMember


@dataclass(frozen=True)
class Errors:
    """One library's exception classes, under esdbclient's names."""

    NotFound: type[Exception]
    StreamIsDeleted: type[Exception]
    WrongCurrentVersion: type[Exception]
    FailedPrecondition: type[Exception]
    MaximumAppendSizeExceededError: type[Exception]


@dataclass(frozen=True)
class Library:
    """A client library: how to build its clients and what it calls things."""

    name: str
    scheme: str
    errors: Errors
    subscription_info: type[object]
    leader_state: str
    async_client: Callable[[str], Any]
    sync_client: Callable[[str], Any]
    event: Callable[[NewEvent], object]
    version: Callable[[Version], object]

    def uri(self, uri: str, *, discover: bool | None = None) -> str:
        """``uri`` in this library's own scheme; ``+discover`` kept unless ``discover`` says."""
        scheme, _, rest = uri.partition("://")
        if discover is None:
            discover = scheme.endswith("+discover")
        return f"{self.scheme}{'+discover' if discover else ''}://{rest}"

    def events(self, events: Iterable[NewEvent]) -> list[object]:
        return [self.event(event) for event in events]


def suite_version(version: int | Enum) -> Version:
    """A stream state a client returned, as the suite's ``StreamState``."""
    return version if isinstance(version, int) else StreamState[version.name]


def to_kurrentdb_event(event: NewEvent) -> kurrentdbclient.NewEvent:
    return kurrentdbclient.NewEvent(
        type=event.type,
        data=event.data,
        metadata=event.metadata,
        content_type=event.content_type,
        id=event.id,
    )


def to_kurrentdb_version(version: Version) -> int | kurrentdbclient.StreamState:
    return version if isinstance(version, int) else kurrentdbclient.StreamState[version.name]


ESDBCLIENT = Library(
    name="esdbclient",
    scheme="esdb",
    errors=Errors(
        NotFound=esdbclient.exceptions.NotFound,
        StreamIsDeleted=esdbclient.exceptions.StreamIsDeleted,
        WrongCurrentVersion=esdbclient.exceptions.WrongCurrentVersion,
        FailedPrecondition=esdbclient.exceptions.FailedPrecondition,
        MaximumAppendSizeExceededError=esdbclient.exceptions.MaximumAppendSizeExceededError,
    ),
    subscription_info=esdbclient.persistent.SubscriptionInfo,
    leader_state=esdbclient.gossip.NODE_STATE_LEADER,
    async_client=esdbclient.AsyncEventStoreDBClient,
    sync_client=esdbclient.EventStoreDBClient,
    event=lambda event: event,
    version=lambda version: version,
)

KURRENTDBCLIENT = Library(
    name="kurrentdbclient",
    scheme="kurrentdb",
    errors=Errors(
        NotFound=kurrentdbclient.exceptions.NotFoundError,
        StreamIsDeleted=kurrentdbclient.exceptions.StreamIsDeletedError,
        WrongCurrentVersion=kurrentdbclient.exceptions.WrongCurrentVersionError,
        FailedPrecondition=kurrentdbclient.exceptions.FailedPreconditionError,
        MaximumAppendSizeExceededError=kurrentdbclient.exceptions.MaximumAppendSizeExceededError,
    ),
    subscription_info=kurrentdbclient.persistent.SubscriptionInfo,
    leader_state=kurrentdbclient.gossip.NODE_STATE_LEADER,
    async_client=kurrentdbclient.AsyncKurrentDBClient,
    sync_client=kurrentdbclient.KurrentDBClient,
    event=to_kurrentdb_event,
    version=to_kurrentdb_version,
)

LIBRARIES = {library.name: library for library in (ESDBCLIENT, KURRENTDBCLIENT)}

# For tests that also send raw gRPC (esdbclient's protos): the library does not matter there.
esdbclient_only = pytest.mark.parametrize("library", [ESDBCLIENT.name], indirect=True)


class AsyncClient:
    """An async client of either library that takes the suite's ``NewEvent`` and ``StreamState``.

    kurrentdbclient 1.0 kept esdbclient's method and parameter names; only the types of events
    and stream states differ, which this converts. ``**options`` pass through unchanged.
    """

    def __init__(self, library: Library, uri: str) -> None:
        self.library = library
        self._client = library.async_client(library.uri(uri))

    async def connect(self) -> None:
        await self._client.connect()

    async def close(self) -> None:
        await self._client.close()

    async def append_to_stream(
        self,
        stream: str,
        *,
        current_version: Version,
        events: Sequence[NewEvent],
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline the client sends)
    ) -> int:
        position: int = await self._client.append_to_stream(
            stream,
            current_version=self.library.version(current_version),
            events=self.library.events(events),
            timeout=timeout,
        )
        return position

    async def get_stream(self, stream: str, **options: Any) -> Sequence[RecordedEvent]:
        events: Sequence[RecordedEvent] = await self._client.get_stream(stream, **options)
        return events

    async def read_all(self, **options: Any) -> AsyncReadResponse:
        response: AsyncReadResponse = await self._client.read_all(**options)
        return response

    async def get_commit_position(self, **options: Any) -> int:
        position: int = await self._client.get_commit_position(**options)
        return position

    async def get_current_version(self, stream: str) -> Version:
        return suite_version(await self._client.get_current_version(stream))

    async def get_stream_metadata(self, stream: str) -> tuple[dict[str, Any], Version]:
        metadata, version = await self._client.get_stream_metadata(stream)
        return metadata, suite_version(version)

    async def set_stream_metadata(
        self,
        stream: str,
        metadata: dict[str, Any],
        current_version: Version = StreamState.ANY,
    ) -> None:
        await self._client.set_stream_metadata(
            stream, metadata=metadata, current_version=self.library.version(current_version)
        )

    async def delete_stream(self, stream: str, *, current_version: Version) -> None:
        await self._client.delete_stream(
            stream, current_version=self.library.version(current_version)
        )

    async def tombstone_stream(self, stream: str, *, current_version: Version) -> None:
        await self._client.tombstone_stream(
            stream, current_version=self.library.version(current_version)
        )

    async def subscribe_to_all(self, **options: Any) -> AsyncSubscription:
        subscription: AsyncSubscription = await self._client.subscribe_to_all(**options)
        return subscription

    async def subscribe_to_stream(self, stream: str, **options: Any) -> AsyncSubscription:
        subscription: AsyncSubscription = await self._client.subscribe_to_stream(stream, **options)
        return subscription

    async def list_subscriptions(self) -> Sequence[object]:
        subscriptions: Sequence[object] = await self._client.list_subscriptions()
        return subscriptions


class SyncClient:
    """A blocking client of either library; see ``AsyncClient``."""

    def __init__(self, library: Library, uri: str) -> None:
        self.library = library
        self._client = library.sync_client(library.uri(uri))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def connection_target(self) -> str:
        target: str = self._client.connection_target
        return target

    def append_to_stream(
        self,
        stream: str,
        *,
        current_version: Version,
        events: NewEvent | Sequence[NewEvent],
        timeout: float | None = None,
    ) -> int:
        """Appends over ``BatchAppend``, or over ``Append`` for one event that is no list."""
        converted = (
            self.library.event(events)
            if isinstance(events, NewEvent)
            else self.library.events(events)
        )
        position: int = self._client.append_to_stream(
            stream,
            current_version=self.library.version(current_version),
            events=converted,
            timeout=timeout,
        )
        return position

    def append_over_append_rpc(
        self,
        stream: str,
        *,
        current_version: Version,
        events: Sequence[NewEvent],
        timeout: float | None = None,
    ) -> int:
        """Several events over ``Append``, which the public API sends only one event over."""
        position: int = self._client.streams.append(
            stream_name=stream,
            current_version=self.library.version(current_version),
            events=self.library.events(events),
            timeout=timeout,
        )
        return position

    def get_stream(self, stream: str, **options: Any) -> Sequence[RecordedEvent]:
        events: Sequence[RecordedEvent] = self._client.get_stream(stream, **options)
        return events

    def read_all(self, **options: Any) -> Iterable[RecordedEvent]:
        events: Iterable[RecordedEvent] = self._client.read_all(**options)
        return events

    def delete_stream(self, stream: str, *, current_version: Version) -> None:
        self._client.delete_stream(stream, current_version=self.library.version(current_version))

    def subscribe_to_stream(self, stream: str, **options: Any) -> SyncSubscription:
        subscription: SyncSubscription = self._client.subscribe_to_stream(stream, **options)
        return subscription

    def list_subscriptions(self) -> Sequence[object]:
        subscriptions: Sequence[object] = self._client.list_subscriptions()
        return subscriptions

    def read_gossip(self) -> Sequence[ClusterMember]:
        members: Sequence[ClusterMember] = self._client.read_gossip()
        return members
