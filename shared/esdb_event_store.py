"""The event store adapter over esdbclient: the only module that imports it.

Driver errors are translated here into the project's own (``ConcurrencyError``,
``StreamNotFound``, ``StoreUnavailable``). Transient failures (unavailable, deadline) are
retried with exponential backoff and jitter for a bounded time before ``StoreUnavailable``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

from esdbclient import AsyncEventStoreDBClient, StreamState
from esdbclient import NewEvent as EsdbNewEvent
from esdbclient import RecordedEvent as EsdbRecordedEvent
from esdbclient.events import CaughtUp as EsdbCaughtUp
from esdbclient.events import Checkpoint as EsdbCheckpoint
from esdbclient.exceptions import (
    DeadlineExceeded,
    DiscoveryFailed,
    GrpcError,
    NotFound,
    ServiceUnavailable,
    WrongCurrentVersion,
)
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from shared.errors import ConcurrencyError, StoreUnavailable, StreamNotFound
from shared.event_store import (
    ANY,
    NO_STREAM,
    AppendResult,
    CaughtUp,
    Checkpoint,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
    SubscriptionItem,
)

TRANSIENT = (ServiceUnavailable, DeadlineExceeded, DiscoveryFailed, GrpcError)
_ACTUAL_REVISION = re.compile(r"last event is (\d+)")
# Filter checkpoints every window x multiplier scanned events (EventStoreDB's defaults).
CHECKPOINT_WINDOW = 32
CHECKPOINT_MULTIPLIER = 5


def _event_type_filter(event_types: Sequence[str]) -> list[str]:
    # esdbclient wraps the patterns as "^" + "|".join(p) + "$": one group keeps the anchors
    # around the whole alternation.
    return ["(?:" + "|".join(re.escape(name) for name in event_types) + ")"]


def _expected(expected: ExpectedRevision) -> int | StreamState:
    if expected == NO_STREAM:
        return StreamState.NO_STREAM
    if expected == ANY:
        return StreamState.ANY
    assert isinstance(expected, int)
    return expected


def _actual_revision(error: WrongCurrentVersion) -> int | None:
    match = _ACTUAL_REVISION.search(str(error))
    return int(match.group(1)) if match else None


def _recorded(event: EsdbRecordedEvent) -> RecordedEvent:
    return RecordedEvent(
        event_id=event.id,
        stream=event.stream_name,
        revision=event.stream_position,
        position=event.commit_position or 0,
        type=event.type,
        data=event.data,
        metadata=event.metadata,
        recorded_at=event.recorded_at or datetime.now(UTC),
    )


class EsdbEventStore:
    """``shared.event_store.EventStore`` over an EventStoreDB (or embedded-eventstore) server."""

    def __init__(self, uri: str, *, retry_budget_s: float = 5.0) -> None:
        self._uri = uri
        self._retry_budget_s = retry_budget_s
        self._client: AsyncEventStoreDBClient | None = None

    async def connect(self) -> None:
        """Create the client. For a single ``esdb://`` target no RPC is made yet."""
        client = AsyncEventStoreDBClient(self._uri)
        await self._call(client.connect)
        self._client = client

    @property
    def client(self) -> AsyncEventStoreDBClient:
        if self._client is None:
            raise RuntimeError("EsdbEventStore.connect() was not awaited")
        return self._client

    async def _call[T](self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation``, retrying transient errors within the budget."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(TRANSIENT),
                stop=stop_after_delay(self._retry_budget_s),
                wait=wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05),
                reraise=True,
            ):
                with attempt:
                    return await operation()
        except TRANSIENT as error:
            raise StoreUnavailable("eventstore", type(error).__name__) from error
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        """Raises StoreUnavailable unless the server answers a read. Connects first when
        ``connect()`` has not succeeded yet, so start-up can simply ping until it answers."""
        if self._client is None:
            await self.connect()
        await self._call(lambda: self.client.get_commit_position(filter_exclude=()))

    async def append(
        self, stream: str, expected: ExpectedRevision, events: Sequence[NewEvent]
    ) -> AppendResult:
        if not events:
            raise ValueError("append needs at least one event")
        new = [
            EsdbNewEvent(type=e.type, data=e.data, metadata=e.metadata, id=e.event_id)
            for e in events
        ]
        try:
            position = await self._call(
                lambda: self.client.append_to_stream(
                    stream, current_version=_expected(expected), events=new
                )
            )
        except WrongCurrentVersion as error:
            raise ConcurrencyError(stream, expected, _actual_revision(error)) from error
        if isinstance(expected, int):
            revision = expected + len(events)
        elif expected == NO_STREAM:
            revision = len(events) - 1
        else:
            last = await self._call(lambda: self.client.get_stream(stream, backwards=True, limit=1))
            revision = last[0].stream_position
        return AppendResult(revision=revision, position=position)

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        try:
            events = await self._call(lambda: self.client.get_stream(stream))
        except NotFound as error:
            raise StreamNotFound(stream) from error
        return [_recorded(event) for event in events]

    async def head_position(self, event_types: Sequence[str]) -> int:
        return await self._call(
            lambda: self.client.get_commit_position(filter_include=_event_type_filter(event_types))
        )

    async def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        subscription = await self._call(
            lambda: self.client.subscribe_to_all(
                commit_position=after_position,
                filter_include=_event_type_filter(event_types),
                include_checkpoints=True,
                include_caught_up=True,
                window_size=CHECKPOINT_WINDOW,
                checkpoint_interval_multiplier=CHECKPOINT_MULTIPLIER,
            )
        )
        try:
            async for event in subscription:
                if isinstance(event, EsdbCheckpoint):
                    yield Checkpoint(position=event.commit_position or 0)
                elif isinstance(event, EsdbCaughtUp):
                    yield CaughtUp()
                else:
                    yield _recorded(event)
        except TRANSIENT as error:
            raise StoreUnavailable("eventstore", type(error).__name__) from error
        finally:
            await subscription.stop()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
