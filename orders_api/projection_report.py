"""Where the projections stand, as ``/health/ready`` and ``/metrics`` show it: read at most once
per ``PROJECTION_REPORT_TTL_S``, however many probes and scrapes ask.

A reading (``projector.facade.projection_statuses`` and the dead-letter counts) opens a
filtered subscription per projection to count its pending events: far too much to pay per
request when a crowd of probes or scrapers calls. ``ProjectionReport`` keeps the last reading
with the time it was taken and reads again only once it is older than the interval. Callers
arriving while a reading is under way wait for that one: there is never more than one reading
at a time, and a caller that gives up (its client left) does not stop it for the others.

A reading that fails (a store unavailable, or no answer within ``READ_TIMEOUT_S``) is never
kept as figures: every caller is told it failed, as each was when it read for itself. The
failure is kept for ``FAILURE_HOLD_S`` (never longer than the interval) so that a crowd does not
retry it call by call. After an operator's action (admin routes: parking a dead letter,
starting a rebuild) the app factory has the reading dropped, so the next probe shows its effect.

One bound for both routes: events are counted exactly up to ``COUNT_LIMIT`` per projection
(within ``COUNT_TIMEOUT_S``) and extrapolated beyond it, as ``lag_events_exact`` says. It is the
probe's tight bound: whichever caller finds the reading old waits for the next one, and that
may be a readiness probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from projector.facade import ProjectionStatus, dead_letter_counts, projection_statuses
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStoreReader
from shared.process.deadlines import within
from shared.process.logging_setup import redact

log = logging.getLogger(__name__)
COUNT_LIMIT = 200
COUNT_TIMEOUT_S = 0.3
MAX_DEAD_LETTERS = 10_000
# A whole reading: 3 projections x COUNT_TIMEOUT_S of counting leave room for the other reads.
READ_TIMEOUT_S = 2.0
FAILURE_HOLD_S = 1.0


@dataclass(frozen=True, slots=True)
class Reading:
    """What one reading found, and when (on the report's clock) it was taken."""

    statuses: tuple[ProjectionStatus, ...]
    dead_letters: Mapping[str, int]
    taken_at: float


class ReportUnavailable(Exception):
    """The projections could not be read; ``reason`` says why ("unavailable: ...", or "not
    read within ...s"), with secrets redacted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    at: float


class ProjectionReport:
    """The last reading of every projection's status, refreshed at most once per ``ttl_s``
    (0: every call reads, but concurrent calls still share one reading)."""

    def __init__(
        self,
        documents: DocumentStore,
        events: EventStoreReader,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s must be >= 0, not {ttl_s}")
        self._documents = documents
        self._events = events
        self._ttl_s = ttl_s
        self._hold_s = min(FAILURE_HOLD_S, ttl_s)
        self._clock = clock
        self._reading: Reading | None = None
        self._failure: _Failure | None = None
        self._in_flight: asyncio.Task[Reading | _Failure] | None = None
        self._tasks: set[asyncio.Task[Reading | _Failure]] = set()
        self._generation = 0  # bumped by ``invalidate``: older readings are not kept

    async def read(self) -> Reading:
        """The last reading if younger than the interval, else the one under way, else a new
        one. Raises ``ReportUnavailable`` if the reading failed (or one failed just now)."""
        now = self._clock()
        if self._reading is not None and now - self._reading.taken_at < self._ttl_s:
            return self._reading
        if self._failure is not None and now - self._failure.at < self._hold_s:
            raise ReportUnavailable(self._failure.reason)
        if self._in_flight is None:
            task = asyncio.create_task(self._take_reading(self._generation))
            self._tasks.add(task)
            task.add_done_callback(self._finished)
            self._in_flight = task
        # A caller that is cancelled stops waiting; the reading goes on for the others.
        outcome = await asyncio.shield(self._in_flight)
        if isinstance(outcome, _Failure):
            raise ReportUnavailable(outcome.reason)
        return outcome

    def age_s(self, reading: Reading) -> float:
        """How old ``reading`` is now, in seconds."""
        return max(0.0, self._clock() - reading.taken_at)

    def invalidate(self) -> None:
        """Forget the last reading (and failure): the next call reads again. A reading under
        way still answers the callers waiting for it but is not kept."""
        self._generation += 1
        self._reading = None
        self._failure = None
        self._in_flight = None

    async def close(self) -> None:
        """Stop any reading under way (before the stores close)."""
        self._in_flight = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _finished(self, task: asyncio.Task[Reading | _Failure]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # read: an error its callers all left before is not logged again

    async def _take_reading(self, generation: int) -> Reading | _Failure:
        started = self._clock()
        try:
            statuses, parked = await within(self._read_stores(), READ_TIMEOUT_S)
        except TimeoutError:
            outcome: Reading | _Failure = self._failed(f"not read within {READ_TIMEOUT_S:g}s")
        except StoreUnavailable as error:
            outcome = self._failed(f"unavailable: {redact(str(error))}")
        else:
            outcome = Reading(tuple(statuses), parked, taken_at=started)
        finally:
            # Also after an unexpected error (answered 500 to those waiting): the next call
            # reads again.
            if generation == self._generation:
                self._in_flight = None
        if generation == self._generation:
            if isinstance(outcome, Reading):
                self._reading, self._failure = outcome, None
            else:
                self._failure = outcome
        return outcome

    def _failed(self, reason: str) -> _Failure:
        log.warning("projection report not refreshed: %s", reason)
        return _Failure(reason, at=self._clock())

    async def _read_stores(self) -> tuple[list[ProjectionStatus], Mapping[str, int]]:
        statuses = await projection_statuses(
            self._documents,
            self._events,
            count_limit=COUNT_LIMIT,
            count_timeout_s=COUNT_TIMEOUT_S,
        )
        parked = await dead_letter_counts(self._documents, limit=MAX_DEAD_LETTERS)
        return statuses, parked
