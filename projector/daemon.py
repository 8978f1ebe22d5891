"""The daemon's controller: feed the *active* version of every projection this instance holds
the lease of, follow the registry.

- Leases (``projector.leases``): several daemon instances may run at once; each feeds only the
  projections whose lease it holds. When the set changes (a lease taken, lost or offered for
  handing over) the session restarts with the new set after the batch in flight (an idle
  session at once: ``wake``); a lease offered is handed over then, its last batch saved; a
  version fed under a newly taken lease first gets the lease's token stamped on its checkpoint,
  then resumes from it. On a clean stop the leases are given back at once, after the last
  batch was saved.
- A rebuild whose runner died (its claim's heartbeat stale, never given up) is resumed by the
  instance holding the projection's lease.

- First run: a registry entry at version 1 is created for each projection; indexes are ensured.
- Each projection version resumes from its own checkpoint; the single subscription starts from
  the lowest, and versions already past an event skip it (a new projection starts from the
  beginning while the others skip what they already have).
- Between batches (at most every ``refresh_s``) the registry is re-read: when a rebuild has
  switched a projection to a new version, the session restarts feeding the new version from
  its checkpoint (never the version being rebuilt). Failed versions are re-read too: once an
  operator parked the failing event, the version rejoins.
- A version recorded as failed is retried once when the daemon starts (the code may have been
  fixed since); if the event still fails it is marked failed again.
- Versions retired by a rebuild are dropped once their grace period has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from projector.batching import Batch
from projector.checkpoint_store import Target, load_checkpoints, save_checkpoints, stamp_fence
from projector.leases import (
    DEFAULT_LEASE_S,
    Lease,
    LeaseKeeper,
    LeaseLost,
    LeaseObserver,
    default_instance_id,
)
from projector.lifecycle import Trigger, rebuild_owner_alive
from projector.projection import Projection
from projector.rebuild import RebuildOptions, RebuildOutcome, rebuild_projection
from projector.runner import Decision, Runner, RunnerObserver, RunnerSettings, describe
from projector.version_registry import (
    drop_old_versions,
    drop_version,
    ensure_entries,
    retire_due,
)
from shared.contract.read_models import RegistryEntry, collection_name, read_registry
from shared.contract.versioned_events import EventRegistry, utc_now
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStoreReader

log = logging.getLogger(__name__)
# After a stop request the daemon gets this long to finish its batch, then this long to record
# that it stopped: together under the 5 s a supervisor (honcho, docker) waits before SIGKILL,
# even when the supervisor stops MongoDB at the same moment.
STOP_GRACE_S = 2.5
STOP_RECORD_TIMEOUT_S = 1.0


class DaemonController:
    def __init__(
        self,
        document_store: DocumentStore,
        projections: Sequence[Projection],
        event_types: Sequence[str],
        *,
        retire_grace: timedelta = timedelta(seconds=10),
        refresh_s: float = 0.5,
        clock: Callable[[], datetime] = utc_now,
        leases: LeaseKeeper | None = None,
        resume_rebuild: Callable[[Projection], None] | None = None,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")
        self.event_types = tuple(event_types)
        self._store = document_store
        self._projections = {p.name: p for p in projections}
        self._retire_grace = retire_grace
        self._refresh_s = refresh_s
        self._clock = clock
        self._entries: dict[str, RegistryEntry] = {}
        self._first_session = True
        self._refreshed_at: datetime | None = None
        self._retiring: dict[str, tuple[int, datetime]] = {}
        self._leases = leases
        self._resume_rebuild = resume_rebuild
        self._fed: set[str] | None = None

    @property
    def wake(self) -> asyncio.Event | None:
        """The leases changed: an idle session acts on it at once."""
        return self._leases.changed if self._leases is not None else None

    async def prepare(self) -> None:
        """Registry entries, indexes of the active versions, and leftovers of old versions."""
        self._entries = await ensure_entries(self._store, list(self._projections))
        for name, entry in self._entries.items():
            collection = collection_name(name, entry.active_version)
            await self._store.ensure_indexes(collection, self._projections[name].indexes)
            dropped = await drop_old_versions(self._store, entry, self._clock(), self._retire_grace)
            if dropped:
                log.info("projection %s: dropped old versions %s", name, dropped)

    async def _held(self) -> dict[str, Lease | None]:
        """The projections to feed, with the lease each is fed under (all, without leases)."""
        if self._leases is None:
            return dict.fromkeys(self._projections)
        await self._leases.verify()
        self._leases.changed.clear()
        held: dict[str, Lease | None] = dict(self._leases.held())
        # Those left out are being handed over: the last session saved their last batch.
        await self._leases.hand_over()
        return held

    async def start_session(self, current: Sequence[Target]) -> list[Target]:
        """The active version of every projection held: kept as the last session left it, read
        from its checkpoint when it is new (a rebuild switched versions, or its lease was just
        taken: stamped with the lease's token first) or failed (an operator may have parked its
        event). A failed version is retried once, in the first session."""
        if self._first_session:
            await self.prepare()
        held = await self._held()
        self._entries = await read_registry(self._store, list(self._projections))
        kept = {target.name: target for target in current}
        now = self._clock()
        targets: dict[str, Target] = {}
        for name, entry in self._entries.items():
            if name not in held:
                continue
            lease = held[name]
            previous = kept.get(name)
            if (
                previous is not None
                and previous.version == entry.active_version
                and previous.lease is lease
            ):
                targets[name] = previous
                continue
            targets[name] = Target(self._projections[name], entry.active_version, lease=lease)
            if previous is not None and previous.version != entry.active_version:
                # Our last batch may have written to the old version after the rebuild dropped
                # it: drop it again once queries had their grace period.
                self._retiring[name] = (previous.version, now + self._retire_grace)
        fresh = {name for name, target in targets.items() if kept.get(name) is not target}
        for name in sorted(fresh):
            lease = targets[name].lease
            if lease is not None and not await stamp_fence(
                self._store, targets[name].checkpoint_id, lease.token, now
            ):
                log.warning("projection %s: a newer lease stamped its checkpoint", name)
                lease.revoke()
                del targets[name]
        # Every target is read back from its checkpoint: stored under our own fence it is where
        # the last save that took effect left it (a bulk save refused for one lease may have
        # landed for the others while the runner kept their older progress), and a failed
        # version's may have been resumed by an operator.
        reread = list(targets.values())
        records = await load_checkpoints(self._store, [t.checkpoint_id for t in reread])
        for target in reread:
            restored = target.restored(records.get(target.checkpoint_id))
            if target.name in fresh:
                log.info(
                    "projection %s: feeding version %d from position %d",
                    restored.name,
                    restored.version,
                    restored.position,
                )
            targets[target.name] = restored
        session = [self._resumed(target) for target in targets.values()]
        if self._leases is not None and set(targets) != self._fed:
            self._fed = set(targets)
            log.info(
                "instance %s feeds %s",
                self._leases.instance_id,
                ", ".join(sorted(targets)) or "nothing (no lease held)",
            )
        self._first_session = False
        self._refreshed_at = now
        return session

    def _resumed(self, target: Target) -> Target:
        if target.failure is None:
            return target.moved(Trigger.RESUMED)
        if not self._first_session:
            return target
        log.warning(
            "projection %s v%d: retrying event %s it failed on",
            target.name,
            target.version,
            target.failure.event_id,
        )
        return target.moved(Trigger.RETRIED)

    async def after_batch(self, batch: Batch, targets: Sequence[Target]) -> Decision:
        if self._leases is not None and self._leases.changed.is_set():
            return Decision.RESTART
        now = self._clock()
        if self._refreshed_at is not None and (now - self._refreshed_at).total_seconds() < (
            self._refresh_s
        ):
            return Decision.CONTINUE
        self._refreshed_at = now
        versions = {target.name: target.version for target in targets}
        entries = {
            name: entry
            for name, entry in (await read_registry(self._store, list(self._projections))).items()
            if name in versions
        }
        for name, entry in entries.items():
            self._resume_if_abandoned(entry, now)
            if retire_due(entry, now, self._retire_grace):
                dropped = await drop_old_versions(self._store, entry, now, self._retire_grace)
                log.info("projection %s: dropped retired versions %s", name, dropped)
        for name, (version, due) in list(self._retiring.items()):
            if now >= due:
                await drop_version(self._store, name, version)
                del self._retiring[name]
        if any(entry.active_version != versions[name] for name, entry in entries.items()):
            return Decision.RESTART
        failed = [t for t in targets if t.failure is not None]
        records = await load_checkpoints(self._store, [t.checkpoint_id for t in failed])
        for target in failed:
            record = records.get(target.checkpoint_id)
            if record is not None and record.failure is None:
                log.info(
                    "projection %s v%d: resuming at position %d after an operator action",
                    target.name,
                    target.version,
                    record.position,
                )
                return Decision.RESTART  # the new session reads it from its checkpoint
        return Decision.CONTINUE

    def _resume_if_abandoned(self, entry: RegistryEntry, now: datetime) -> None:
        """A rebuild whose owner died (claimed, heartbeat stale; not given up) is resumed here."""
        if (
            self._resume_rebuild is not None
            and entry.rebuilding_version is not None
            and entry.rebuild_owner is not None
            and not rebuild_owner_alive(entry, now)
        ):
            self._resume_rebuild(self._projections[entry.name])

    async def on_outage(self, reason: str, targets: Sequence[Target]) -> None:
        """Best effort: MongoDB may be the store that is down."""
        await save_checkpoints(self._store, _writable(targets), self._clock())

    async def on_stop(self, targets: Sequence[Target]) -> None:
        """Record that the daemon stopped (after its last batch was saved)."""
        stopped = [t.moved(Trigger.STOPPED) for t in _writable(targets)]
        await save_checkpoints(self._store, stopped, self._clock())


def _writable(targets: Sequence[Target]) -> list[Target]:
    """The targets accepting events whose lease (if any) is still held."""
    return [t for t in targets if t.accepting and t.writable]


async def run_daemon(
    event_store: EventStoreReader,
    document_store: DocumentStore,
    registry: EventRegistry,
    projections: Sequence[Projection],
    *,
    event_types: Sequence[str],
    settings: RunnerSettings,
    stop: asyncio.Event,
    retire_grace: timedelta = timedelta(seconds=10),
    refresh_s: float = 0.5,
    observer: RunnerObserver | None = None,
    clock: Callable[[], datetime] = utc_now,
    instance_id: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    lease_observer: LeaseObserver | None = None,
) -> None:
    """Feed the active version of every projection whose lease this instance holds until
    ``stop`` is set; then finish the batch, save checkpoints, record the state ``stopped`` and
    give the leases back."""
    keeper = LeaseKeeper(
        document_store,
        [p.name for p in projections],
        instance_id=instance_id or default_instance_id(),
        lease_s=lease_s,
        clock=clock,
        observer=lease_observer,
    )
    rebuilds = _Rebuilds(
        partial(
            rebuild_projection,
            event_store,
            document_store,
            registry,
            event_types=event_types,
            options=RebuildOptions(runner=settings, show_progress=False, keep_claim=True),
            stop=stop,
            clock=clock,
        )
    )
    controller = DaemonController(
        document_store,
        projections,
        event_types,
        retire_grace=retire_grace,
        refresh_s=refresh_s,
        clock=clock,
        leases=keeper,
        resume_rebuild=rebuilds.resume,
    )
    runner = Runner(
        event_store,
        document_store,
        registry,
        settings=settings,
        stop=stop,
        clock=clock,
        observer=observer,
    )
    log.info("projector instance %s starting (leases of %.1f s)", keeper.instance_id, lease_s)
    await keeper.beat()  # the first session starts with the leases it can take now
    # The heartbeat outlives the stop request: the last batch and the stop record are written
    # under leases that must still be held; they are given back once those are done.
    heartbeat_stop = asyncio.Event()
    heartbeat = asyncio.create_task(keeper.run(heartbeat_stop))
    try:
        await _run_until_stopped(runner.run(controller), stop)
        # Recording "stopped" is a courtesy: the checkpoints of the last batch are already saved.
        try:
            async with asyncio.timeout(STOP_RECORD_TIMEOUT_S):
                await controller.on_stop(runner.targets)
        except (StoreUnavailable, TimeoutError, LeaseLost) as error:
            log.warning("could not record the stop: %s", describe(error))
    finally:
        stop.set()
        heartbeat_stop.set()
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await rebuilds.wait()
        try:
            async with asyncio.timeout(STOP_RECORD_TIMEOUT_S):
                await keeper.release_all()
        except (StoreUnavailable, TimeoutError) as error:
            log.warning("could not give the leases back (they expire by themselves): %s", error)


class _Rebuilds:
    """Rebuilds this instance resumes after their runner died, one per projection at a time."""

    def __init__(self, rebuild: Callable[[Projection], Awaitable[RebuildOutcome]]) -> None:
        self._rebuild = rebuild
        self._running: dict[str, asyncio.Task[None]] = {}

    def resume(self, projection: Projection) -> None:
        task = self._running.get(projection.name)
        if task is not None and not task.done():
            return
        log.warning("projection %s: resuming a rebuild whose runner died", projection.name)
        self._running[projection.name] = asyncio.create_task(self._run(projection))

    async def _run(self, projection: Projection) -> None:
        try:
            outcome = await self._rebuild(projection)
        except Exception as error:  # its own claim and checkpoint say how it stands
            log.warning("projection %s: resumed rebuild ended: %s", projection.name, error)
            return
        if outcome.switched:
            log.info("projection %s: resumed rebuild switched", outcome.projection)

    async def wait(self) -> None:
        tasks = [task for task in self._running.values() if not task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in tasks:
                task.cancel()


async def _run_until_stopped(run: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``run``; once ``stop`` is set, give it STOP_GRACE_S to finish the current batch.

    Cutting a batch short is safe: its checkpoint is not saved, so its events are delivered
    again after a restart and, being conditional on ``_position``, apply exactly once.
    """
    task = asyncio.create_task(run)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
            if not done:
                log.warning(
                    "the last batch did not finish within %.1f s of the stop request; "
                    "it will be delivered again on the next start",
                    STOP_GRACE_S,
                )
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return
        task.result()
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
