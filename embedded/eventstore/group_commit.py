"""Group commit: writes that arrive while a commit is in flight are committed together next.

A durable commit costs an fsync, which dwarfs the SQL of an append. So writes are not each sent
to the writer thread on their own: while one group's transaction is being committed, the writes
that arrive queue up on the event loop, and when it is done they all go to the writer thread as
the next group, one transaction and one fsync (`LogWriter.commit`). A lone writer sees no delay:
with nothing in flight, its write starts at once as a group of one.

Everything here runs on the event loop; only `LogWriter.commit` runs on the writer thread.
Each write keeps its own outcome (see `LogWriter.commit`), the new head is announced only after
COMMIT returned, and then every caller of the group gets its answer.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from embedded.eventstore.records import WriteResult
from embedded.eventstore.writer import Committed, LogWriter, Work

# Bounds on one group, so one transaction stays of a sane size and the first caller's latency
# bounded: beyond these the queued writes wait for the next group.
MAX_GROUP_WRITES = 256
MAX_GROUP_BYTES = 16 * 1024 * 1024  # event bytes, as `ProposedEvent.size` counts them


@dataclass(frozen=True)
class _Queued:
    work: Work
    size: int
    answer: asyncio.Future[WriteResult]


class GroupCommit:
    """Queues writes and hands them to the writer thread a group at a time, in arrival order."""

    def __init__(
        self, writer: LogWriter, writer_thread: Executor, on_commit: Callable[[int], None]
    ) -> None:
        self._writer = writer
        self._writer_thread = writer_thread
        self._on_commit = on_commit  # called with the new head after each COMMIT
        self._queued: list[_Queued] = []
        self._in_flight: asyncio.Future[Committed] | None = None
        self.groups_committed = 0  # writes / groups = the mean group size

    def submit(self, work: Work, size: int = 0) -> asyncio.Future[WriteResult]:
        """Queue `work`; the future is done once its group has committed (or it failed).

        The write happens even if nobody waits for the future any more: shield it.
        """
        answer = asyncio.get_running_loop().create_future()
        self._queued.append(_Queued(work, size, answer))
        if self._in_flight is None:
            self._start()
        return answer

    async def drain(self) -> None:
        """Return once every queued write has been committed and answered."""
        while self._in_flight is not None:
            await asyncio.wait([self._in_flight])

    def _start(self) -> None:
        group = self._next_group()
        loop = asyncio.get_running_loop()
        works = [queued.work for queued in group]
        self._in_flight = loop.run_in_executor(self._writer_thread, self._writer.commit, works)
        self._in_flight.add_done_callback(functools.partial(self._finish, group))

    def _next_group(self) -> list[_Queued]:
        """The oldest queued writes, within the bounds (at least one, whatever its size)."""
        count, size = 0, 0
        for queued in self._queued:
            if count and (count >= MAX_GROUP_WRITES or size + queued.size > MAX_GROUP_BYTES):
                break
            count += 1
            size += queued.size
        group, self._queued = self._queued[:count], self._queued[count:]
        return group

    def _finish(self, group: list[_Queued], done: asyncio.Future[Committed]) -> None:
        """On the loop after the writer thread returned: announce, answer, start the next."""
        self._in_flight = None
        outcomes: list[WriteResult | BaseException]
        if done.cancelled():  # only if the loop is shutting down under us
            outcomes = [asyncio.CancelledError()] * len(group)
        elif (error := done.exception()) is not None:
            outcomes = [error] * len(group)  # the writer itself broke: nothing was committed
        else:
            committed = done.result()
            self.groups_committed += 1
            self._on_commit(committed.head)
            outcomes = list(committed.outcomes)
        for queued, outcome in zip(group, outcomes, strict=True):
            if queued.answer.done():  # cancelled by an unshielded caller: nobody to tell
                continue
            if isinstance(outcome, asyncio.CancelledError):
                queued.answer.cancel()
            elif isinstance(outcome, BaseException):
                queued.answer.set_exception(outcome)
            else:
                queued.answer.set_result(outcome)
        if self._queued:
            self._start()
