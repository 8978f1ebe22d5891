"""The event store port: what the write side and the projector need from EventStoreDB.

Narrow on purpose (a writer plus a reader). ``shared/adapters/esdb_event_store.py`` implements
it over esdbclient; tests implement it in memory. Every implementation passes the contract suite in
``tests/contracts/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from shared.errors import ServiceError

NO_STREAM: Literal["no_stream"] = "no_stream"
ANY: Literal["any"] = "any"
ExpectedRevision = int | Literal["no_stream", "any"]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. ``event_id`` makes re-appends of the same event idempotent."""

    event_id: UUID
    type: str
    data: bytes
    metadata: bytes


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: its stream revision (from 0) and its global commit position."""

    event_id: UUID
    stream: str
    revision: int
    position: int
    type: str
    data: bytes
    metadata: bytes
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Stream revision of the last event appended and the commit position of that event."""

    revision: int
    position: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The server scanned up to ``position`` without finding more matching events."""

    position: int


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """The subscription has delivered everything stored so far; live events follow."""


SubscriptionItem = RecordedEvent | Checkpoint | CaughtUp


class EventStoreWriter(Protocol):
    async def append(
        self, stream: str, expected: ExpectedRevision, events: Sequence[NewEvent]
    ) -> AppendResult:
        """Append atomically. Raises ConcurrencyError when ``expected`` does not hold and
        StoreUnavailable when the store cannot be reached within the retry budget. Re-appending
        events with the same ids at the same expected revision writes nothing and returns the
        original result."""
        ...


class EventStoreReader(Protocol):
    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        """All events of ``stream`` in revision order, never an empty list: StreamNotFound when
        it has none, StoreUnavailable for a read cut short."""
        ...

    def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        """Events of the given types from ``$all`` after ``after_position`` (exclusive; None =
        from the start), then CaughtUp, then live events, with Checkpoint items in between.
        Never ends by itself."""
        ...

    async def head_position(self, event_types: Sequence[str]) -> int:
        """Commit position of the newest event of the given types; 0 when there is none."""
        ...


class EventStore(EventStoreWriter, EventStoreReader, Protocol):
    async def ping(self) -> None:
        """Raises StoreUnavailable unless the store answers."""
        ...

    async def close(self) -> None: ...


class ConcurrencyError(ServiceError):
    """The stream moved on since it was read: the expected revision no longer holds."""

    def __init__(self, stream: str, expected: object, actual: int | None = None) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream!r}: expected revision {expected}, actual {actual}")


class StreamNotFound(ServiceError):
    """The stream has no events (never written, or deleted)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"stream {stream!r} not found")
