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
from projector.checkpoint_store import State, Target, load_checkpoints, save_checkpoints
from projector.projection import Projection
from projector.runner import Decision, Runner, RunnerObserver, RunnerSettings, describe
from projector.version_registry import (
    RegistryEntry,
    drop_old_versions,
    drop_version,
    ensure_entries,
    read_entries,
    retire_due,
)
from shared.contract.read_models import collection_name
from shared.contract.versioned_events import EventRegistry, utc_now
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStoreReader

log = logging.getLogger(__name__)
RESUMABLE: frozenset[State] = frozenset({"not_started", "store_unavailable", "failing", "stopped"})
# After a stop request the daemon gets this long to finish its batch, then this long to record
# that it stopped: together under the 5 s a supervisor (honcho, docker) waits before SIGKILL,
# even when the supervisor stops MongoDB at the same moment.
STOP_GRACE_S = 2.5
STOP_RECORD_TIMEOUT_S = 1.0


class DaemonController:
    live_state: State = "live"

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
        self._targets: dict[str, Target] = {}
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

    async def start_session(self) -> list[Target]:
        if self._first_session:
            await self.prepare()
        self._entries = await read_entries(self._store, list(self._projections))
        wanted = {name: entry.active_version for name, entry in self._entries.items()}
        fresh = [
            Target(self._projections[name], version, state="not_started")
            for name, version in wanted.items()
            if (kept := self._targets.get(name)) is None or kept.version != version
        ]
        records = await load_checkpoints(self._store, [t.checkpoint_id for t in fresh])
        now = self._clock()
        for target in fresh:
            target.restore(records.get(target.checkpoint_id))
            if (previous := self._targets.get(target.name)) is not None:
                # Our last batch may have written to the old version after the rebuild dropped
                # it: drop it again once queries had their grace period.
                self._retiring[target.name] = (previous.version, now + self._retire_grace)
            log.info(
                "projection %s: feeding version %d from position %d",
                target.name,
                target.version,
                target.position,
            )
            self._targets[target.name] = target
        for target in self._targets.values():
            if self._first_session and target.failure is not None:
                log.warning(
                    "projection %s v%d: retrying event %s it failed on",
                    target.name,
                    target.version,
                    target.failure.event_id,
                )
                target.failure = None
                target.state = "catching_up"
            if target.state in RESUMABLE:
                target.state = "catching_up"
        self._first_session = False
        self._refreshed_at = now
        return list(self._targets.values())

    async def after_batch(self, batch: Batch, targets: Sequence[Target]) -> Decision:
        now = self._clock()
        if self._refreshed_at is not None and (now - self._refreshed_at).total_seconds() < (
            self._refresh_s
        ):
            return Decision.CONTINUE
        self._refreshed_at = now
        entries = await read_entries(self._store, list(self._projections))
        for name, entry in entries.items():
            if retire_due(entry, now, self._retire_grace):
                dropped = await drop_old_versions(self._store, entry, now, self._retire_grace)
                log.info("projection %s: dropped retired versions %s", name, dropped)
        for name, (version, due) in list(self._retiring.items()):
            if now >= due:
                await drop_version(self._store, name, version)
                del self._retiring[name]
        if any(
            entry.active_version != self._targets[name].version for name, entry in entries.items()
        ):
            return Decision.RESTART
        failed = [t for t in targets if not t.accepting]
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
                target.restore(record)
                return Decision.RESTART
        return Decision.CONTINUE

    async def on_outage(self, reason: str, targets: Sequence[Target], state: State) -> None:
        """Best effort: MongoDB may be the store that is down."""
        for target in targets:
            if target.accepting:
                target.state = state
        await save_checkpoints(
            self._store, [t for t in targets if t.accepting], self._clock(), reason
        )

    async def on_stop(self) -> None:
        """Record that the daemon stopped (after its last batch was saved)."""
        targets = [t for t in self._targets.values() if t.accepting]
        for target in targets:
            target.state = "stopped"
        await save_checkpoints(self._store, targets, self._clock())


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
            await controller.on_stop()
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
