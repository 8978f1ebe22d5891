"""The daemon's controller: feed the *active* version of every projection, follow the registry.

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
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from projector.batching import Batch
from projector.checkpoint_store import Target, load_checkpoints, save_checkpoints
from projector.lifecycle import Trigger
from projector.projection import Projection
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

    async def prepare(self) -> None:
        """Registry entries, indexes of the active versions, and leftovers of old versions."""
        self._entries = await ensure_entries(self._store, list(self._projections))
        for name, entry in self._entries.items():
            collection = collection_name(name, entry.active_version)
            await self._store.ensure_indexes(collection, self._projections[name].indexes)
            dropped = await drop_old_versions(self._store, entry, self._clock(), self._retire_grace)
            if dropped:
                log.info("projection %s: dropped old versions %s", name, dropped)

    async def start_session(self, current: Sequence[Target]) -> list[Target]:
        """The active version of every projection: kept as the last session left it, read from
        its checkpoint when it is new (a rebuild switched versions) or failed (an operator may
        have parked its event). A failed version is retried once, in the first session."""
        if self._first_session:
            await self.prepare()
        self._entries = await read_registry(self._store, list(self._projections))
        kept = {target.name: target for target in current}
        now = self._clock()
        targets: dict[str, Target] = {}
        for name, entry in self._entries.items():
            previous = kept.get(name)
            if previous is not None and previous.version == entry.active_version:
                targets[name] = previous
                continue
            targets[name] = Target(self._projections[name], entry.active_version)
            if previous is not None:
                # Our last batch may have written to the old version after the rebuild dropped
                # it: drop it again once queries had their grace period.
                self._retiring[name] = (previous.version, now + self._retire_grace)
        fresh = {name for name, target in targets.items() if kept.get(name) is not target}
        reread = [t for t in targets.values() if t.name in fresh or t.failure is not None]
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
        now = self._clock()
        if self._refreshed_at is not None and (now - self._refreshed_at).total_seconds() < (
            self._refresh_s
        ):
            return Decision.CONTINUE
        self._refreshed_at = now
        entries = await read_registry(self._store, list(self._projections))
        for name, entry in entries.items():
            if retire_due(entry, now, self._retire_grace):
                dropped = await drop_old_versions(self._store, entry, now, self._retire_grace)
                log.info("projection %s: dropped retired versions %s", name, dropped)
        for name, (version, due) in list(self._retiring.items()):
            if now >= due:
                await drop_version(self._store, name, version)
                del self._retiring[name]
        versions = {target.name: target.version for target in targets}
        if any(entry.active_version != versions.get(name) for name, entry in entries.items()):
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

    async def on_outage(self, reason: str, targets: Sequence[Target]) -> None:
        """Best effort: MongoDB may be the store that is down."""
        await save_checkpoints(self._store, [t for t in targets if t.accepting], self._clock())

    async def on_stop(self, targets: Sequence[Target]) -> None:
        """Record that the daemon stopped (after its last batch was saved)."""
        stopped = [t.moved(Trigger.STOPPED) for t in targets if t.accepting]
        await save_checkpoints(self._store, stopped, self._clock())


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
) -> None:
    """Feed the active version of every projection until ``stop`` is set; then finish the
    batch, save checkpoints and record the state ``stopped``."""
    controller = DaemonController(
        document_store,
        projections,
        event_types,
        retire_grace=retire_grace,
        refresh_s=refresh_s,
        clock=clock,
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
    await _run_until_stopped(runner.run(controller), stop)
    # Recording "stopped" is a courtesy: the checkpoints of the last batch are already saved.
    try:
        async with asyncio.timeout(STOP_RECORD_TIMEOUT_S):
            await controller.on_stop(runner.targets)
    except (StoreUnavailable, TimeoutError) as error:
        log.warning("could not record the stop: %s", describe(error))


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
