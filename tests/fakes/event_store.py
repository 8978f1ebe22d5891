"""An in-memory ``shared.ports.event_store.EventStore`` that behaves like EventStoreDB.

It follows the same contract as ``shared.adapters.esdb_event_store.EsdbEventStore`` (checked by
``tests/contracts/test_event_store_contract.py``):

* Stream revisions start at 0. Every event gets a global commit position, strictly increasing
  in append order, distinct per event, with gaps (like a log offset), never 0.
* ``append`` is atomic and checks the expected revision exactly like EventStoreDB
  (``NO_STREAM``, ``ANY`` or an exact revision), including the idempotent re-append: the same
  event ids re-sent at the same expected revision write nothing and return the original result.
* ``read_stream`` raises ``StreamNotFound`` for a stream with no events.
* ``subscribe_all`` yields matching events after a position (exclusive), then ``CaughtUp``, then
  live events, with a ``Checkpoint`` after every 160 events scanned (EventStoreDB's window 32 x
  multiplier 5), matching or not. It never ends by itself.
* ``head_position`` is the position of the newest matching event, 0 when none matches.

Every operation yields to the event loop once before acting, as real I/O would, so concurrent
tasks interleave (and conflict) the way they do against a server. ``unavailable = True`` makes
every operation raise ``StoreUnavailable``, for testing how callers handle an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

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

CHECKPOINT_EVERY = 32 * 5
# Positions start above 0 and leave gaps, so callers cannot get away with assuming 0 or +1.
FIRST_POSITION = 1024
POSITION_OVERHEAD = 64


class InMemoryEventStore:
    """``EventStore`` in memory. Safe for many concurrent tasks on one event loop."""

    def __init__(self) -> None:
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._log: list[RecordedEvent] = []
        self._next_position = FIRST_POSITION
        self._appended = asyncio.Event()
        self.unavailable = False
        self.append_calls = 0

    async def _io(self) -> None:
        await asyncio.sleep(0)  # a suspension point, as a network round trip would be
        if self.unavailable:
            raise StoreUnavailable("eventstore", "in-memory store set unavailable")

    async def ping(self) -> None:
        """Raises StoreUnavailable while ``unavailable`` is set."""
        await self._io()

    async def close(self) -> None:
        """Nothing to release; the data stays readable."""

    async def append(
        self, stream: str, expected: ExpectedRevision, events: Sequence[NewEvent]
    ) -> AppendResult:
        """Append ``events`` atomically when ``expected`` holds (see the module docstring).

        Raises ConcurrencyError(stream, expected, actual) with ``actual`` the current last
        revision (None for a stream that does not exist), ValueError for an empty batch.
        """
        if not events:
            raise ValueError("append needs at least one event")
        await self._io()
        self.append_calls += 1
        stored = self._streams.get(stream, [])
        current = len(stored) - 1
        repeat = self._idempotent_repeat(stream, stored, expected, events)
        if repeat is not None:
            return repeat
        if expected == NO_STREAM:
            if stored:
                raise ConcurrencyError(stream, expected, current)
        elif isinstance(expected, int) and expected != current:
            raise ConcurrencyError(stream, expected, current if stored else None)
        return self._write(stream, events)

    @staticmethod
    def _idempotent_repeat(
        stream: str,
        stored: list[RecordedEvent],
        expected: ExpectedRevision,
        events: Sequence[NewEvent],
    ) -> AppendResult | None:
        """The original result when ``events`` were already appended (EventStoreDB rules 5, 6);
        None when they are new. A partial match is a conflict."""
        ids = [event.event_id for event in events]
        current = len(stored) - 1
        if expected == ANY:
            start = next((i for i, e in enumerate(stored) if e.event_id == ids[0]), None)
            if start is None:
                return None
        else:
            start = -1 if expected == NO_STREAM else int(expected)
            start += 1
            if start > current:
                return None  # exact == current (or beyond): a plain append or a plain conflict
        window = [e.event_id for e in stored[start : start + len(ids)]]
        if window != ids:
            raise ConcurrencyError(stream, expected, current)
        last = stored[start + len(ids) - 1]
        return AppendResult(revision=last.revision, position=last.position)

    def _write(self, stream: str, events: Sequence[NewEvent]) -> AppendResult:
        stored = self._streams.setdefault(stream, [])
        now = datetime.now(UTC)
        for event in events:
            recorded = RecordedEvent(
                event_id=event.event_id,
                stream=stream,
                revision=len(stored),
                position=self._next_position,
                type=event.type,
                data=event.data,
                metadata=event.metadata,
                recorded_at=now,
            )
            self._next_position += POSITION_OVERHEAD + len(event.data) + len(event.metadata)
            stored.append(recorded)
            self._log.append(recorded)
        # Wake every live subscriber, then arm a fresh event for the next append.
        self._appended.set()
        self._appended = asyncio.Event()
        last = stored[-1]
        return AppendResult(revision=last.revision, position=last.position)

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        """All events of ``stream`` from revision 0. Raises StreamNotFound when it has none."""
        await self._io()
        stored = self._streams.get(stream)
        if not stored:
            raise StreamNotFound(stream)
        return list(stored)

    async def head_position(self, event_types: Sequence[str]) -> int:
        """Position of the newest event of one of ``event_types``; 0 when there is none."""
        await self._io()
        wanted = set(event_types)
        return next((e.position for e in reversed(self._log) if e.type in wanted), 0)

    async def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        """Events of ``event_types`` with position > ``after_position`` (all when None), then
        CaughtUp once, then live events; Checkpoints in between (see the module docstring)."""
        await self._io()
        wanted = set(event_types)
        floor = -1 if after_position is None else after_position
        index = next((i for i, e in enumerate(self._log) if e.position > floor), len(self._log))
        scanned = 0
        caught_up = False
        while True:
            while index < len(self._log):
                event = self._log[index]
                index += 1
                scanned += 1
                if event.type in wanted:
                    yield event
                if scanned % CHECKPOINT_EVERY == 0:
                    yield Checkpoint(position=event.position)
            if not caught_up:
                caught_up = True
                yield CaughtUp()
                continue  # events may have been appended while the consumer handled CaughtUp
            appended = self._appended
            if index >= len(self._log):
                await appended.wait()
            if self.unavailable:
                raise StoreUnavailable("eventstore", "in-memory store set unavailable")
