"""Read-your-writes: wait until a read model has applied a given commit position.

A command answers with the commit position of its last event (the consistency token). A query
carrying it waits until the checkpoint of the projection behind it reaches that position, up to
the query's ``wait_ms``, and then answers either way: lag makes an answer stale, never an error.

One ``CheckpointWatcher`` per process does the waiting for every request. It polls the
checkpoint collection only while somebody waits, at a modest interval, with one query per
tick however many requests wait (the checkpoints of the active versions of the projections
waited on; one document besides while reads of one document wait, see below), and wakes each
waiter as soon as its position is reached, handing it the active version it saw reach it, so
the request reads that version at once without resolving it again.
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

A read of one document (``ReadModels.document``: an order by its id) needs less than the whole
projection. Every read document carries ``_position``, the position of the last event applied
to it, and the projector applies each document's events in log order, taking an event at or
below ``_position`` as applied already; so a document whose ``_position`` is at least the token
has applied every event up to the token that concerns it, which is all a checkpoint at the token
promises about that document (``has_applied``). The document lands before the checkpoint, which
moves only once the whole batch is written, and a polling client sees it then; so such a read
answers as soon as either holds. It tries the document it reads anyway first, and only when
that is behind does it wait. Each tick then reads, beside the checkpoints and at the same time,
one document by ``_id``: the one the waiter with the lowest token waits for (the projector
applies the log in order, so that token is the next one reached), handed to every waiter of
that document it satisfies, which answers with it without reading again. So a tick costs at
most two cheap queries, however many wait. The checkpoint still releases a document's waiter
too (the token may be of an event that does not touch the document, e.g. another order's);
the document is then read after the checkpoint was, as any released read is.

The number of waiters is bounded (``max_waiters``): each one holds a request, its connection and
a future for up to ``wait_ms``, so a burst of tokens from the future would otherwise pile up
until other reads time out and memory is gone. Beyond the bound a wait is refused at once with
``TooManyWaiters`` (the API answers 503 with Retry-After) instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from read_side.active_models import ActiveModels
from shared.contract.read_models import (
    POSITION_FIELD,
    ActiveReadModel,
    collection_name,
    read_checkpoints,
    read_registry,
)
from shared.errors import ServiceError
from shared.ports.document_store import Document, DocumentStore
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


def has_applied(document: Document | None, position: int) -> bool:
    """Whether ``document`` has applied every event up to ``position`` that concerns it: its
    ``_position`` (the last event applied to it) is at least ``position``."""
    applied = None if document is None else document.get(POSITION_FIELD)
    return isinstance(applied, int) and not isinstance(applied, bool) and applied >= position


@dataclass(frozen=True, slots=True)
class Reached:
    """What released a waiter: the active version as the tick saw it, and the document waited
    for when that document had applied the position itself (None: the checkpoint reached it,
    and the document is to be read now)."""

    model: ActiveReadModel
    document: Document | None = None


@dataclass(eq=False)
class _Waiter:
    projection: str
    position: int
    document_id: str | None = None  # a read of this one document: it may release the waiter
    reached: asyncio.Future[Reached] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class _Look:
    """What one tick read: the active version of each projection waited on (with its
    checkpoint, if it has one) and the one document it read, if any."""

    models: dict[str, ActiveReadModel]
    checkpointed: frozenset[str]  # the projections whose active version has a checkpoint
    document_of: tuple[str, str] | None = None  # (projection, _id) of the document read
    document: Document | None = None

    def release(self, waiter: _Waiter) -> Reached | None:
        """What releases ``waiter`` now: its document, when the tick read it and it has
        applied the waiter's position (it needs no read then), else the checkpoint."""
        model = self.models.get(waiter.projection)
        if model is None:
            return None
        if self.document_of == (waiter.projection, waiter.document_id) and has_applied(
            self.document, waiter.position
        ):
            return Reached(model, self.document)
        if waiter.projection in self.checkpointed and model.position >= waiter.position:
            return Reached(model)
        return None


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
        reached = await self._wait(_Waiter(projection, position), timeout_s, resolved, resolved_at)
        return None if reached is None else reached.model

    async def document_reached(
        self,
        projection: str,
        document_id: str,
        position: int,
        timeout_s: float,
        *,
        resolved: ActiveReadModel | None = None,
        resolved_at: float | None = None,
    ) -> Reached | None:
        """Like ``reached``, for a read of the one document ``document_id`` of ``projection``:
        released too once that document has applied ``position`` (``Reached.document``, as the
        tick read it), whichever comes first; None on timeout."""
        waiter = _Waiter(projection, position, document_id)
        return await self._wait(waiter, timeout_s, resolved, resolved_at)

    async def _wait(
        self,
        waiter: _Waiter,
        timeout_s: float,
        resolved: ActiveReadModel | None,
        resolved_at: float | None,
    ) -> Reached | None:
        if len(self._waiters) >= self.max_waiters:
            self._refusals.warn(len(self._waiters))
            raise TooManyWaiters(self.max_waiters)
        if resolved is not None and resolved_at is not None:
            self._learn(waiter.projection, resolved.version, resolved_at)
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
        """Read the checkpoints (and one waited-for document) once and wake every waiter they
        satisfy. Never raises: a store outage must not stop the watcher (the waiters time out
        instead)."""
        try:
            look = await self._look(list(self._waiters))
        except Exception as error:
            # Every tick while the store is down: one throttled line, never a traceback each.
            self._poll_failures.warn(type(error).__name__, redact(str(error)))
            look = _Look({}, frozenset())
        for waiter in list(self._waiters):
            reached = None if waiter.reached.done() else look.release(waiter)
            if reached is not None:
                waiter.reached.set_result(reached)
        self.polls += 1

    def _learn(self, projection: str, version: int, at: float) -> None:
        """Take ``version`` as active unless a later registry read said otherwise."""
        known = self._versions.get(projection)
        if known is None or at >= known.at:
            self._versions[projection] = _Learnt(version, at)

    async def _look(self, waiters: Sequence[_Waiter]) -> _Look:
        """The active version of each projection waited on and its checkpoint (one query),
        with, read at the same time, the document of the waiter with the lowest position among
        those waiting for one document; a read of the registry first when a version is not
        known recently enough."""
        wanted = sorted({waiter.projection for waiter in waiters})
        if not wanted:
            return _Look({}, frozenset())
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
        checkpoint_read = read_checkpoints(self._store, sorted(set(collections.values())))
        lowest = min(
            (
                (waiter.position, waiter.projection, waiter.document_id)
                for waiter in waiters
                if waiter.document_id is not None
            ),
            default=None,
        )
        document_of: tuple[str, str] | None = None
        document: Document | None = None
        if lowest is None:
            checkpoints = await checkpoint_read
        else:
            _, projection, document_id = lowest
            document_of = (projection, document_id)
            checkpoints, document = await asyncio.gather(
                checkpoint_read,
                self._store.find_one(collections[projection], {"_id": document_id}),
            )
        models = {name: ActiveReadModel.of(name, versions[name], checkpoints) for name in wanted}
        checkpointed = frozenset(name for name, c in collections.items() if c in checkpoints)
        return _Look(models, checkpointed, document_of, document)


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
        self._active = ActiveModels(store)  # resolves the active versions in shared rounds

    async def snapshot(self, projection: str, min_position: int | None, wait_ms: int) -> Snapshot:
        """The active version of ``projection``, once it has reached ``min_position`` or
        ``wait_ms`` has passed (then ``stale`` is true). Without ``min_position``: at once.
        Raises ``TooManyWaiters`` when it would have to wait and too many wait already."""
        resolved_at = asyncio.get_running_loop().time()
        active = await self._active.resolve(projection)
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
            active = await self._active.resolve(projection)
        return Snapshot(active, stale=active.position < min_position)

    async def document(
        self, projection: str, document_id: str, min_position: int | None, wait_ms: int
    ) -> tuple[Snapshot, Document | None]:
        """The document ``document_id`` of ``projection``'s active version (None: there is
        none), once the version has reached ``min_position`` or the document itself has applied
        it (``has_applied``), or ``wait_ms`` has passed (then ``stale`` is true). Without
        ``min_position``: at once. The snapshot's position is the version's checkpoint, which
        may be short of ``min_position`` when the document answered for itself.
        Raises ``TooManyWaiters`` when it would have to wait and too many wait already."""
        resolved_at = asyncio.get_running_loop().time()
        active = await self._active.resolve(projection)
        # Read after the checkpoint: it holds at least what the checkpoint says was applied.
        document = await self._find(active, document_id)
        if (
            min_position is None
            or active.position >= min_position
            or has_applied(document, min_position)
        ):
            return Snapshot(active, stale=False), document
        if wait_ms > 0:
            reached = await self._watcher.document_reached(
                projection,
                document_id,
                min_position,
                wait_ms / 1000,
                resolved=active,
                resolved_at=resolved_at,
            )
            if reached is not None:
                if reached.document is None:  # the checkpoint reached it: read the document now
                    return Snapshot(reached.model, stale=False), await self._find(
                        reached.model, document_id
                    )
                return Snapshot(reached.model, stale=False), reached.document
            # Timed out: answer from the active version as it stands now.
            active = await self._active.resolve(projection)
            document = await self._find(active, document_id)
        fresh = active.position >= min_position or has_applied(document, min_position)
        return Snapshot(active, stale=not fresh), document

    async def _find(self, model: ActiveReadModel, document_id: str) -> Document | None:
        return await self.store.find_one(model.collection, {"_id": document_id})
