"""The event store adapter over esdbclient: the only module that imports it.

Driver errors are translated here into the project's own (``ConcurrencyError``,
``StreamNotFound``, ``StoreUnavailable``): whatever an outage looks like from the client
(gRPC errors, esdbclient's ServiceUnavailable, DeadlineExceeded, DiscoveryFailed,
ExceptionIteratingRequests, a call cancelled because a reconnect closed its channel, a read cut
short) ends as ``StoreUnavailable``, never as another exception or a made-up answer.

Every call is bounded: each RPC carries a gRPC deadline, and the whole operation (esdbclient's
own reconnect-and-retry, then ours with backoff and jitter) has one time budget, enforced with
``shared.process.deadlines.within`` so a library that swallows its cancellation cannot stretch it. A
store that stops answering therefore costs a caller at most ``budget_s`` seconds.

An append first goes over a BatchAppend call kept open from earlier appends (``_AppendCalls``),
for at most half the budget: that wait is bounded with ``asyncio.timeout`` (gRPC's awaitables
honour cancellation; esdbclient is not involved). Without an answer there, the append goes
through esdbclient as above, within what is left of the budget.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
from esdbclient import AsyncEventStoreDBClient, StreamState
from esdbclient import NewEvent as EsdbNewEvent
from esdbclient import RecordedEvent as EsdbRecordedEvent
from esdbclient.events import CaughtUp as EsdbCaughtUp
from esdbclient.events import Checkpoint as EsdbCheckpoint
from esdbclient.exceptions import (
    AccessDeniedError,
    BadRequestError,
    EventStoreDBClientException,
    MaximumAppendSizeExceededError,
    NotFound,
    ProgrammingError,
    StreamIsDeleted,
    WrongCurrentVersion,
)

from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import (
    ANY,
    NO_STREAM,
    AppendResult,
    CaughtUp,
    Checkpoint,
    ConcurrencyError,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
    StreamNotFound,
    SubscriptionItem,
)
from shared.process.deadlines import reassert_cancellation, within

STORE = "eventstore"
# The default time budget of one operation, retries included (ApiSettings.eventstore_timeout_s
# sets the API's). Each RPC gets at most half of it, so a hung call leaves time for one retry.
BUDGET_S = 5.0
MIN_RPC_TIMEOUT_S = 0.1
# Backoff between our retries: BACKOFF_S * 2**n plus up to BACKOFF_JITTER_S of jitter before
# retry n (from 0), at most MAX_BACKOFF_S.
BACKOFF_S = 0.05
BACKOFF_JITTER_S = 0.05
MAX_BACKOFF_S = 1.0
# BatchAppend calls kept open for appends per connection (``_AppendCalls``). HTTP/2 bounds the
# streams open at once on a connection, and reads and subscriptions need their share.
MAX_APPEND_CALLS = 32


class _CallCut(Exception):
    """A call ended without its answer: gRPC cancelled it (a reconnect closed its channel) or a
    read stopped before the server said it was complete."""


# Answers about the data or the request, not about the store's health: never retried, never
# turned into StoreUnavailable.
ANSWERS: tuple[type[BaseException], ...] = (
    NotFound,
    WrongCurrentVersion,
    StreamIsDeleted,
    AccessDeniedError,
    MaximumAppendSizeExceededError,
    BadRequestError,
    ProgrammingError,
)
# Everything else the client raises is an outage (grpc.aio.UsageError: "Channel is closed").
OUTAGES: tuple[type[BaseException], ...] = (
    EventStoreDBClientException,
    grpc.RpcError,
    grpc.aio.UsageError,
    _CallCut,
)
_ACTUAL_REVISION = re.compile(r"last event is (\d+)")
# Filter checkpoints every window x multiplier scanned events (EventStoreDB's defaults).
CHECKPOINT_WINDOW = 32
CHECKPOINT_MULTIPLIER = 5


def _is_outage(error: BaseException) -> bool:
    return isinstance(error, OUTAGES) and not isinstance(error, ANSWERS)


def _backoff_s(retry: int) -> float:
    """The pause before retry number ``retry`` (from 0): exponential, jittered, capped."""
    exponential = BACKOFF_S * 2.0 ** min(retry, 32)
    return min(exponential + random.uniform(0, BACKOFF_JITTER_S), MAX_BACKOFF_S)


async def _answered[T](work: Awaitable[T]) -> T:
    """``work``'s result, with a gRPC-made cancellation turned into ``_CallCut``.

    grpc.aio raises ``CancelledError`` in the caller when a call is cancelled under it (esdbclient
    closes the channel on reconnect, cancelling every call on it). That is not a request to
    cancel this task: left alone it would escape the request handler as a cancellation and the
    client's connection would close without an answer.
    """
    try:
        result = await work
    except asyncio.CancelledError:
        reassert_cancellation()  # a real request to cancel this task: honour it
        raise _CallCut("call cancelled: its connection was closed") from None
    reassert_cancellation()  # esdbclient may have swallowed one and returned a cut answer
    return result


async def _complete(response: Any) -> list[EsdbRecordedEvent]:
    """Every event of a read, or ``_CallCut``. esdbclient ends the iteration quietly when the
    call is cancelled, so an empty or short list would look like an answer: only a call that
    finished with status OK delivered the whole read."""
    events = [event async for event in response]
    reassert_cancellation()
    code = await response.aio_call.code()
    if code != grpc.StatusCode.OK:
        raise _CallCut(f"read ended with status {code.name} after {len(events)} events")
    return events


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


class _AppendCalls:
    """Long-lived BatchAppend calls of one esdbclient client, each carrying one append at a time.

    esdbclient opens a BatchAppend call for every append and cancels it once answered; setting a
    gRPC call up and tearing it down costs the client (and the server) about twice what the
    append on it does. BatchAppend answers any number of requests on one call, each under its
    correlation id, so a call that answered is kept for the next append. The calls belong to
    the client's current connection and are dropped when it reconnects.

    ``append`` gets its answer on a call (the commit position, or the error the server answered,
    raised as esdbclient raises it) or returns None: no call is free (at most ``limit`` are
    open) or the call failed (it is dropped with the idle ones, which most likely share its
    fate). The caller then appends through esdbclient, whose reconnects and error mapping apply
    as ever. A call whose answer is not in within ``deadline_s`` is dropped and the append raises
    ``_CallCut``. Requests and answers are converted by esdbclient's own functions (internals
    of the pinned esdbclient 1.1.7), so an append sends the same request either way.
    """

    def __init__(self, client: AsyncEventStoreDBClient, limit: int = MAX_APPEND_CALLS) -> None:
        self._client = client
        self._limit = limit
        self._connection: Any = None  # the esdbclient connection the calls belong to
        self._idle: list[Any] = []
        self._open: set[Any] = set()

    @property
    def open_calls(self) -> int:
        """Calls open now, idle or carrying an append."""
        return len(self._open)

    def _take(self) -> Any:
        connection = self._client._connection
        if connection is not self._connection:
            self.drop_all()
            self._connection = connection
        if self._idle:
            return self._idle.pop()
        if len(self._open) >= self._limit:
            return None
        streams = connection.streams
        try:
            call = streams._stub.BatchAppend(
                metadata=streams._metadata(self._client._call_metadata, requires_leader=True),
                credentials=self._client._call_credentials,
            )
        except Exception:  # e.g. its channel was closed: esdbclient's path reconnects
            return None
        self._open.add(call)
        return call

    def _drop(self, call: Any) -> None:
        self._open.discard(call)
        call.cancel()

    def drop_all(self) -> None:
        for call in (*self._open,):
            self._drop(call)
        self._idle.clear()

    async def append(
        self,
        stream: str,
        current_version: int | StreamState,
        events: Sequence[EsdbNewEvent],
        deadline_s: float,
    ) -> int | None:
        call = self._take()
        if call is None:
            return None
        streams = self._connection.streams
        request = streams._construct_batch_append_req(
            stream_name=stream,
            current_version=current_version,
            events=events,
            correlation_id=uuid.uuid4(),
            timeout=deadline_s,
        )
        try:
            async with asyncio.timeout(deadline_s):
                await call.write(request)
                response = await call.read()
        except TimeoutError:
            self._drop(call)
            raise _CallCut(f"no answer on a BatchAppend call within {deadline_s:g}s") from None
        except asyncio.CancelledError:
            self._drop(call)
            reassert_cancellation()  # this task was asked to stop: honour it
            self.drop_all()  # else gRPC cancelled the call: its connection closed
            return None
        except Exception:  # the call failed: esdbclient's path takes over
            self._drop(call)
            self.drop_all()
            return None
        if response is grpc.aio.EOF or response.correlation_id != request.correlation_id:
            self._drop(call)
            self.drop_all()
            return None
        self._idle.append(call)
        position: int = streams._convert_batch_append_resp(response, stream, current_version)
        return position


class EsdbEventStore:
    """``shared.ports.event_store.EventStore`` over an EventStoreDB (or embedded-eventstore) server.

    ``retry_budget_s`` bounds each operation, retries included: after it the caller gets
    ``StoreUnavailable`` whatever the server does (answers garbage, nothing, or closes).
    """

    def __init__(self, uri: str, *, retry_budget_s: float = BUDGET_S) -> None:
        if retry_budget_s <= 0:
            raise ValueError(f"retry_budget_s must be positive, got {retry_budget_s}")
        self._uri = uri
        self._budget_s = retry_budget_s
        self._client: AsyncEventStoreDBClient | None = None
        self._append_calls: _AppendCalls | None = None

    async def connect(self) -> None:
        """Create the client. For a single ``esdb://`` target no RPC is made yet."""
        client = AsyncEventStoreDBClient(self._uri)
        await self._call(lambda _deadline_s: client.connect())
        self._client = client
        self._append_calls = _AppendCalls(client)

    @property
    def client(self) -> AsyncEventStoreDBClient:
        if self._client is None:
            raise RuntimeError("EsdbEventStore.connect() was not awaited")
        return self._client

    async def _call[T](
        self, operation: Callable[[float], Awaitable[T]], *, started: float | None = None
    ) -> T:
        """Run ``operation(rpc_timeout_s)`` within the budget, retrying outages with backoff;
        ``StoreUnavailable`` once the budget is spent or the last attempt failed. The budget
        counts from ``started`` (``time.monotonic()``; now when None)."""
        started = time.monotonic() if started is None else started
        try:
            left = started + self._budget_s - time.monotonic()
            return await within(self._attempts(operation, started), left)
        except TimeoutError:
            raise StoreUnavailable(STORE, f"no answer within {self._budget_s:g}s") from None
        except Exception as error:
            if _is_outage(error):
                raise StoreUnavailable(STORE, type(error).__name__) from error
            raise

    async def _attempts[T](self, operation: Callable[[float], Awaitable[T]], started: float) -> T:
        """``operation``'s answer, retried after an outage until the budget has passed since
        ``started`` (then the last error is raised). A plain loop rather than a retry library:
        it runs for every call, and its first attempt should cost nothing extra."""
        deadline = started + self._budget_s
        retry = 0
        while True:
            left = deadline - time.monotonic()
            rpc_timeout = max(MIN_RPC_TIMEOUT_S, min(self._budget_s / 2, left))
            try:
                return await _answered(operation(rpc_timeout))
            except Exception as error:
                if not _is_outage(error) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(_backoff_s(retry))
            retry += 1

    async def ping(self) -> None:
        """Raises StoreUnavailable unless the server answers a read. Connects first when
        ``connect()`` has not succeeded yet, so start-up can simply ping until it answers."""
        if self._client is None:
            await self.connect()
        await self._call(lambda deadline_s: self._last_position(deadline_s, None))

    async def _last_position(self, deadline_s: float, include: Sequence[str] | None) -> int:
        """The commit position of the last event (of ``include`` types; of any kind, system
        events too, when None). Not esdbclient's get_commit_position: that answers 0 for a
        read that was cut short."""
        event_filter: dict[str, Any] = (
            {"filter_exclude": ()} if include is None else {"filter_include": include}
        )
        response = await self.client.read_all(
            backwards=True, limit=1, timeout=deadline_s, **event_filter
        )
        events = await _complete(response)
        return (events[0].commit_position or 0) if events else 0

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
            position = await self._append(stream, _expected(expected), new)
        except WrongCurrentVersion as error:
            raise ConcurrencyError(stream, expected, _actual_revision(error)) from error
        if isinstance(expected, int):
            revision = expected + len(events)
        elif expected == NO_STREAM:
            revision = len(events) - 1
        else:
            last = await self._call(
                lambda deadline_s: self._read(stream, deadline_s, backwards=True, limit=1)
            )
            if not last:
                raise StoreUnavailable(STORE, "stream read back empty after an append")
            revision = last[0].stream_position
        return AppendResult(revision=revision, position=position)

    async def _append(
        self, stream: str, current_version: int | StreamState, new: Sequence[EsdbNewEvent]
    ) -> int:
        """The commit position of the append: on a kept call when one is free and answers
        within half the budget, else through esdbclient (retries included) within what is left
        of it. The kept call needs no ``within``: gRPC's own awaitables never swallow the
        cancellation that ``asyncio.timeout`` bounds them with."""
        started = time.monotonic()
        if self._append_calls is not None:
            try:
                position = await self._append_calls.append(
                    stream, current_version, new, self._budget_s / 2
                )
            except Exception as error:
                if not _is_outage(error):
                    raise  # an answer (wrong version, deleted stream...): the same either way
                position = None  # no answer in time, or the server could not append it
            if position is not None:
                return position
        return await self._call(
            lambda deadline_s: self.client.append_to_stream(
                stream, current_version=current_version, events=new, timeout=deadline_s
            ),
            started=started,
        )

    async def _read(
        self, stream: str, deadline_s: float, *, backwards: bool = False, limit: int | None = None
    ) -> list[EsdbRecordedEvent]:
        options: dict[str, Any] = {"backwards": backwards, "timeout": deadline_s}
        if limit is not None:
            options["limit"] = limit
        return await _complete(await self.client.read_stream(stream, **options))

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        try:
            events = await self._call(lambda deadline_s: self._read(stream, deadline_s))
        except (NotFound, StreamIsDeleted) as error:
            raise StreamNotFound(stream) from error
        if not events:
            # A stream that exists has an event; a missing one raises NotFound. An empty
            # answer is a read that was cut short, not an empty order.
            raise StoreUnavailable(STORE, f"empty read of stream {stream!r}")
        return [_recorded(event) for event in events]

    async def head_position(self, event_types: Sequence[str]) -> int:
        include = _event_type_filter(event_types)
        return await self._call(lambda deadline_s: self._last_position(deadline_s, include))

    async def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        # No gRPC deadline on the subscription itself (it lives as long as its reader); the
        # budget bounds getting it confirmed.
        subscription = await self._call(
            lambda _deadline_s: self.client.subscribe_to_all(
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
            # A catch-up subscription never ends by itself: esdbclient ended it quietly
            # because its call was cancelled (by us: honour it; else its channel closed).
            reassert_cancellation()
            raise StoreUnavailable(STORE, "subscription ended: its connection was closed")
        except Exception as error:
            if _is_outage(error):
                raise StoreUnavailable(STORE, type(error).__name__) from error
            raise
        finally:
            await subscription.stop()

    async def close(self) -> None:
        if self._append_calls is not None:
            self._append_calls.drop_all()
            self._append_calls = None
        if self._client is not None:
            await self._client.close()
            self._client = None
