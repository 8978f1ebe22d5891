"""Read-your-writes: wait until a read model has applied a given commit position.

A command answers with the commit position of its last event (the consistency token). A query
carrying it waits until the checkpoint of the projection behind it reaches that position, up to
the query's ``wait_ms``, and then answers either way: lag makes an answer stale, never an error.

One ``CheckpointWatcher`` per process does the waiting for every request. It polls the
checkpoint collection only while somebody waits, at a modest interval, with one query per
tick however many requests wait (the checkpoints of the active versions of the projections
waited on), and wakes each waiter as soon as its position is reached, handing it the active
version it saw reach it, so the request reads that version at once without resolving it again.
Polling rather than change streams: the ``DocumentStore`` port has no ``watch`` and real
MongoDB offers change streams only on replica sets, so polling works on every deployment.

Which version is active changes only when a rebuild switches versions, so the watcher does not
read the registry every tick: it knows the version each waiting request resolved just before
it began to wait, and reads the registry itself only for a projection whose version it has not
learnt within ``registry_refresh_s`` (then on that tick, for every projection waited on). So
just after a rebuild switched versions a waiter may be woken on the version switched away from,
once that one reached its token: its data holds the write, and a retired version stays readable
for a grace period (``PROJECTOR_RETIRE_GRACE_S``) after the switch.

A checkpoint can pass a token without the projection having had an event at that exact
position (checkpoints also advance on the subscription's filter checkpoints), so waiting is
always for ``checkpoint >= token``.

The number of waiters is bounded (``max_waiters``): each one holds a request, its connection and
a future for up to ``wait_ms``, so a burst of tokens from the future would otherwise pile up
until other reads time out and memory is gone. Beyond the bound a wait is refused at once with
``TooManyWaiters`` (the API answers 503 with Retry-After) instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.contract.read_models import (
    ActiveReadModel,
    collection_name,
    read_checkpoints,
    read_registry,
    resolve_active,
)
from shared.errors import ServiceError
from shared.ports.document_store import DocumentStore
from shared.process.logging_setup import redact
from shared.process.throttled_log import ThrottledWarning

# A tick is one query, so ticking every 10 ms costs MongoDB what the two queries of a 20 ms tick
# did, and a checkpoint that reaches a token is seen about 5 ms sooner on average.
DEFAULT_POLL_INTERVAL_S = 0.01
# How old the watcher's knowledge of a projection's active version may get while requests wait
# on it before it reads the registry again (the projector's daemon follows it as often).
DEFAULT_REGISTRY_REFRESH_S = 0.5
DEFAULT_MAX_WAITERS = 500
# A full waiter list drains within the longest wait (10 s) and usually far sooner: a client
# refused with 503 may try again after a second.
WAIT_REFUSED_RETRY_AFTER_S = 1
log = logging.getLogger(__name__)


class TooManyWaiters(ServiceError):
    """``max_waiters`` requests are waiting already: this one is refused, not queued."""

    def __init__(self, max_waiters: int) -> None:
        self.max_waiters = max_waiters
        self.retry_after_s = WAIT_REFUSED_RETRY_AFTER_S
        super().__init__(f"{max_waiters} reads are already waiting for their consistency token")


@dataclass(eq=False)
class _Waiter:
    projection: str
    position: int
    reached: asyncio.Future[ActiveReadModel] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class _Learnt:
    """A projection's active version, as a registry read begun at ``at`` (loop time) said."""

    version: int
    at: float


class CheckpointWatcher:
    """Wakes waiters when the active version of their projection reaches their position."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        max_waiters: int = DEFAULT_MAX_WAITERS,
        registry_refresh_s: float = DEFAULT_REGISTRY_REFRESH_S,
    ) -> None:
        if max_waiters < 1:
            raise ValueError(f"max_waiters must be at least 1, got {max_waiters}")
        self._store = store
        self._poll_interval_s = poll_interval_s
        self.max_waiters = max_waiters
        self.registry_refresh_s = registry_refresh_s
        self._waiters: set[_Waiter] = set()
        self._versions: dict[str, _Learnt] = {}
        self._refusals = ThrottledWarning(
            log,
            "refused a read-your-writes wait with 503: %d reads are already waiting "
            "(READ_WAIT_MAX_WAITERS)",
        )
        self._poll_failures = ThrottledWarning(
            log, "cannot read projection checkpoints for waiting reads (%s: %s); retrying"
        )
        self._poller: asyncio.Task[None] | None = None
        self.polls = 0

    @property
    def waiting(self) -> int:
        """How many requests are waiting right now."""
        return len(self._waiters)

    @property
    def polling(self) -> bool:
        """Whether the checkpoints are being polled (only while somebody waits)."""
        return self._poller is not None and not self._poller.done()

    @property
    def refused(self) -> int:
        """How many waits were refused because ``max_waiters`` were waiting already."""
        return self._refusals.occurrences

    async def wait_for(self, projection: str, position: int, timeout_s: float) -> bool:
        """True once ``projection``'s checkpoint is at least ``position``; False on timeout.
        See ``reached``."""
        return await self.reached(projection, position, timeout_s) is not None

    async def reached(
        self,
        projection: str,
        position: int,
        timeout_s: float,
        *,
        resolved: ActiveReadModel | None = None,
        resolved_at: float | None = None,
    ) -> ActiveReadModel | None:
        """The active version of ``projection`` once its checkpoint is at least ``position``
        (as the tick that saw it found it); None on timeout. ``resolved``: the active version
        the caller read from the registry in a read begun at ``resolved_at`` (loop time), so
        that the watcher need not read the registry for it.

        Raises ``TooManyWaiters`` at once when ``max_waiters`` are waiting already. A waiter
        whose request is cancelled (its client left) is removed like one that timed out."""
        if len(self._waiters) >= self.max_waiters:
            self._refusals.warn(len(self._waiters))
            raise TooManyWaiters(self.max_waiters)
        if resolved is not None and resolved_at is not None:
            self._learn(projection, resolved.version, resolved_at)
        waiter = _Waiter(projection, position)
        self._waiters.add(waiter)
        self._ensure_polling()
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter.reached
        except TimeoutError:
            return None
        finally:
            self._waiters.discard(waiter)
            self._stop_polling_when_idle()

    async def close(self) -> None:
        """Stop polling (waiters still waiting time out as usual)."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name="read-side-checkpoint-watcher"
            )

    def _stop_polling_when_idle(self) -> None:
        # Cancel at once rather than on the next tick, so an idle process holds no task.
        if not self._waiters and self._poller is not None:
            poller, self._poller = self._poller, None
            poller.cancel()

    async def _poll(self) -> None:
        while self._waiters:
            await asyncio.sleep(self._poll_interval_s)
            await self.poll_once()

    async def poll_once(self) -> None:
        """Read the checkpoints once and wake every waiter they satisfy. Never raises: a store
        outage must not stop the watcher (the waiters time out instead)."""
        try:
            models = await self._active_models({w.projection for w in self._waiters})
        except Exception as error:
            # Every tick while the store is down: one throttled line, never a traceback each.
            self._poll_failures.warn(type(error).__name__, redact(str(error)))
            models = {}
        for waiter in list(self._waiters):
            model = models.get(waiter.projection)
            if model is None or model.position < waiter.position or waiter.reached.done():
                continue
            waiter.reached.set_result(model)
        self.polls += 1

    def _learn(self, projection: str, version: int, at: float) -> None:
        """Take ``version`` as active unless a later registry read said otherwise."""
        known = self._versions.get(projection)
        if known is None or at >= known.at:
            self._versions[projection] = _Learnt(version, at)

    async def _active_models(self, projections: Iterable[str]) -> dict[str, ActiveReadModel]:
        """The active version of each projection with a checkpoint, and its position: one
        query, and a read of the registry first when a version is not known recently enough."""
        wanted = sorted(projections)
        now = asyncio.get_running_loop().time()
        if any(
            (known := self._versions.get(name)) is None or now - known.at >= self.registry_refresh_s
            for name in wanted
        ):
            entries = await read_registry(self._store, wanted)
            for name, entry in entries.items():
                self._learn(name, entry.active_version, now)
        versions = {name: self._versions[name].version for name in wanted}
        collections = {name: collection_name(name, version) for name, version in versions.items()}
        checkpoints = await read_checkpoints(self._store, sorted(set(collections.values())))
        return {
            name: ActiveReadModel(name, versions[name], collection, checkpoint.position)
            for name, collection in collections.items()
            if (checkpoint := checkpoints.get(collection)) is not None
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The read model a query reads, how far it had got, and whether that missed the token."""

    model: ActiveReadModel
    stale: bool

    @property
    def collection(self) -> str:
        return self.model.collection

    @property
    def position(self) -> int:
        return self.model.position


class ReadModels:
    """What query handlers read through: the active collection, after any requested wait."""

    def __init__(self, store: DocumentStore, watcher: CheckpointWatcher) -> None:
        self.store = store
        self._watcher = watcher

    async def snapshot(self, projection: str, min_position: int | None, wait_ms: int) -> Snapshot:
        """The active version of ``projection``, once it has reached ``min_position`` or
        ``wait_ms`` has passed (then ``stale`` is true). Without ``min_position``: at once.
        Raises ``TooManyWaiters`` when it would have to wait and too many wait already."""
        resolved_at = asyncio.get_running_loop().time()
        active = await resolve_active(self.store, projection)
        if min_position is None or active.position >= min_position:
            return Snapshot(active, stale=False)
        if wait_ms > 0:
            reached = await self._watcher.reached(
                projection,
                min_position,
                wait_ms / 1000,
                resolved=active,
                resolved_at=resolved_at,
            )
            if reached is not None:
                # The version the watcher saw reach the token holds the write: read it as is.
                return Snapshot(reached, stale=False)
            # Timed out: answer from the active version as it stands now.
            active = await resolve_active(self.store, projection)
        return Snapshot(active, stale=active.position < min_position)
