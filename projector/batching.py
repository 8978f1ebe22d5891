"""Turn a subscription into batches that form by themselves: whatever has arrived, at most N.

A background task reads the subscription into a bounded queue while the runner writes, so the
batcher can wait for the next item with a timeout without cancelling the subscription's iterator
mid-read, and so a slow writer applies back-pressure instead of the log piling up in memory.

A batch starts with the first item to arrive and takes every item already waiting behind it (up
to ``size`` events), then goes: an event alone is applied at once, not after a wait for company.
Under load batches grow on their own (group commit): while one batch is being written the reader
keeps queueing what the subscription delivers, and the next batch takes all of it. Waiting a
little for more (``linger_s``) is opt-in: it trades the latency of every event for fewer, larger
batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from shared.ports.event_store import CaughtUp, Checkpoint, RecordedEvent, SubscriptionItem


class SubscriptionDropped(Exception):
    """The subscription ended or failed; the runner resubscribes from its checkpoints."""


@dataclass
class Batch:
    """Events in log order, the furthest server checkpoint seen, and whether the subscription
    reported being caught up (everything stored so far delivered) within this batch."""

    events: list[RecordedEvent] = field(default_factory=list)
    checkpoint: int | None = None
    caught_up: bool = False

    def add(self, item: SubscriptionItem) -> None:
        if isinstance(item, RecordedEvent):
            self.events.append(item)
        elif isinstance(item, Checkpoint):
            self.checkpoint = max(self.checkpoint or 0, item.position)
        elif isinstance(item, CaughtUp):
            self.caught_up = True

    @property
    def empty(self) -> bool:
        return not self.events and self.checkpoint is None and not self.caught_up

    @property
    def last_position(self) -> int | None:
        """The furthest position this batch lets a checkpoint advance to."""
        candidates = [
            p for p in (self.checkpoint, self.events[-1].position if self.events else None) if p
        ]
        return max(candidates) if candidates else None


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_ENDED = object()


class SubscriptionPump:
    """Reads ``items`` into a bounded queue from a background task."""

    def __init__(self, items: AsyncIterator[SubscriptionItem], capacity: int) -> None:
        self._items = items
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max(capacity, 1))
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SubscriptionPump:
        self._task = asyncio.create_task(self._run(), name="subscription-pump")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            # esdbclient turns a cancelled read into the end of the subscription, so the task
            # may go on to put an end marker into a full queue: drain until it is done.
            while not self._task.done():
                while not self._queue.empty():
                    self._queue.get_nowait()
                await asyncio.wait({self._task}, timeout=0.05)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    async def _run(self) -> None:
        try:
            async for item in self._items:
                await self._queue.put(item)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._queue.put(_Failed(error))
            return
        await self._queue.put(_ENDED)

    @property
    def ready(self) -> int:
        """How many items are queued, ready to be taken without waiting."""
        return self._queue.qsize()

    def next_ready(self) -> SubscriptionItem | None:
        """The next item if one is queued already; None without waiting."""
        try:
            got = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        return self._unwrap(got)

    async def next(
        self, wait_s: float, stop: asyncio.Event, wake: asyncio.Event | None = None
    ) -> SubscriptionItem | None:
        """The next item; None when ``wait_s`` passed or ``stop`` (or ``wake``) was set first."""
        try:
            got = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            got = await self._wait(wait_s, stop, wake)
            if got is None:
                return None
        return self._unwrap(got)

    @staticmethod
    def _unwrap(got: object) -> SubscriptionItem:
        if isinstance(got, _Failed):
            raise SubscriptionDropped(f"{type(got.error).__name__}: {got.error}") from got.error
        if got is _ENDED:
            raise SubscriptionDropped("the subscription ended")
        return got  # type: ignore[return-value]

    async def _wait(
        self, wait_s: float, stop: asyncio.Event, wake: asyncio.Event | None
    ) -> object | None:
        if stop.is_set() or (wake is not None and wake.is_set()):
            return None
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await wait_for_any((stop, wake), wait_s, also=getter)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None


async def wait_for_any(
    events: Iterable[asyncio.Event | None],
    seconds: float,
    *,
    also: asyncio.Future[Any] | None = None,
) -> None:
    """Until one of ``events`` is set (or ``also`` is done), ``seconds`` at most."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events if event is not None]
    try:
        pending = {*waiters, *([also] if also is not None else [])}
        await asyncio.wait(pending, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def batches(
    pump: SubscriptionPump,
    *,
    size: int,
    linger_s: float = 0.0,
    idle_s: float,
    stop: asyncio.Event,
    wake: asyncio.Event | None = None,
) -> AsyncIterator[Batch]:
    """Batches until ``stop`` is set. Each takes the items ready behind its first one, up to
    ``size`` events or the subscription catching up, and with ``linger_s`` waits that long
    after its first item for more. The batch in progress when ``stop`` is set is still yielded
    (finish the current batch); an empty batch is yielded after ``idle_s`` without items so the
    caller can look around (registry changes, operator actions), or as soon as ``wake`` is set
    (the caller has something to act on; it clears ``wake`` itself)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        first = await pump.next(idle_s, stop, wake)
        batch = Batch()
        if first is not None:
            batch.add(first)
            deadline = loop.time() + linger_s
            while _open(batch, size, stop):
                item = await _ready_item(pump)
                if item is None and linger_s > 0:
                    remaining = deadline - loop.time()
                    if remaining > 0:
                        item = await pump.next(remaining, stop)
                if item is None:
                    break
                batch.add(item)
        yield batch


def _open(batch: Batch, size: int, stop: asyncio.Event) -> bool:
    """Whether ``batch`` may take another item."""
    return len(batch.events) < size and not batch.caught_up and not stop.is_set()


async def _ready_item(pump: SubscriptionPump) -> SubscriptionItem | None:
    """An item that needs no waiting: a queued one, or one the reader queues in the single turn
    of the event loop it is given here (the subscription may hold items it received already).
    None when the subscription has nothing ready."""
    item = pump.next_ready()
    if item is None:
        await asyncio.sleep(0)
        item = pump.next_ready()
    return item
