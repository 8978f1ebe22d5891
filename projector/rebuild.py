"""Zero-downtime rebuild of one projection into a new version, next to the live one.

1. Claim ``rebuilding_version`` = active + 1 in the registry (or resume an interrupted one).
   From then on the daemon keeps feeding the active version only, and queries keep reading it.
2. Build the new version's collection from position 0 with its own checkpoint (state
   ``rebuilding``), using the same runner and subscription filter as the daemon. Its
   secondary indexes are created once it has caught up with the head of the log, not before:
   building an index over the loaded documents costs MongoDB less than keeping it up to date
   through every write of the load, and no query reads the new version before the switch.
   Unique indexes are constraints, not lookups: they are there from the start, so that a
   document breaking one is refused at its event (the version fails on that event).
3. Once caught up with the head of the log, keep following live events until the new version
   is at least where the active one is (or at the head; bounded by ``switch_wait_s``), then
   switch ``active_version`` in one conditional update. The daemon notices on its next batch
   and carries on feeding the new version from its checkpoint.
4. After a grace period (queries that resolved the old version just before the switch finish)
   drop the old version's collection and checkpoint.

Interrupting (Ctrl-C) finishes the batch, saves the checkpoint and gives up the claim; the
half-built version stays unused and the next run resumes it (or starts it over with
``restart``). A rebuild whose process died keeps its claim until the heartbeat is stale; then
the next run, or the daemon instance holding the projection's lease, resumes it.
Operations are conditional on ``_position``, so resuming is always safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from projector.batching import Batch
from projector.checkpoint_store import Target, load_checkpoint, save_checkpoints
from projector.lifecycle import Actor, Trigger
from projector.progress import CatchUpProgress
from projector.projection import Projection
from projector.runner import Decision, Runner, RunnerAbort, RunnerSettings
from projector.version_registry import (
    claim_rebuild,
    drop_old_versions,
    drop_version,
    heartbeat,
    read_entry,
    release_rebuild,
    switch_active,
)
from shared.contract.read_models import FailedEvent, collection_name
from shared.contract.versioned_events import EventRegistry, utc_now
from shared.ports.document_store import DocumentStore, IndexSpec
from shared.ports.event_store import EventStoreReader

HEARTBEAT_EVERY = timedelta(seconds=5)
log = logging.getLogger(__name__)


class RebuildFailed(RunnerAbort):
    """The new version failed on an event (recorded in its checkpoint)."""

    def __init__(self, name: str, version: int, failure: FailedEvent) -> None:
        self.name = name
        self.version = version
        self.failure = failure
        super().__init__(
            f"projection {name!r} v{version} failed on event {failure.event_id} "
            f"({failure.event_type} at position {failure.position}): {failure.error}"
        )


class RebuildLost(RunnerAbort):
    """The registry changed under the rebuild (another process took it over)."""


@dataclass(frozen=True, slots=True)
class RebuildOptions:
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    retire_grace_s: float = 10.0
    switch_wait_s: float = 5.0
    restart: bool = False
    show_progress: bool = True
    progress_file: TextIO | None = None
    # Keep the claim when stopped (a daemon resuming a dead rebuild): once its heartbeat is
    # stale, the instance holding the projection's lease resumes it, as for a crash.
    keep_claim: bool = False


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    projection: str
    version: int
    previous_version: int | None
    switched: bool
    resumed: bool
    events: int
    seconds: float


class RebuildController:
    def __init__(
        self,
        document_store: DocumentStore,
        event_store: EventStoreReader,
        projection: Projection,
        *,
        version: int,
        owner: str,
        event_types: Sequence[str],
        progress: CatchUpProgress,
        switch_wait_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.event_types = tuple(event_types)
        self._store = document_store
        self._events = event_store
        self._projection = projection
        self._version = version
        self._owner = owner
        self._progress = progress
        self._switch_wait = timedelta(seconds=switch_wait_s)
        self._clock = clock
        self._heartbeat_at = clock()
        self._caught_up_at: datetime | None = None
        self.previous_version: int | None = None

    @property
    def switched(self) -> bool:
        return self.previous_version is not None

    @property
    def wake(self) -> None:
        """Nothing wakes a rebuild between batches: it looks around after each."""
        return None

    async def start_session(self, current: Sequence[Target]) -> list[Target]:
        """The version being built, from its checkpoint (keeping the runner's count of its
        troubles across sessions); an event it failed on is retried."""
        [base] = current or [Target(self._projection, self._version, fed_by=Actor.REBUILD)]
        target = base.restored(await load_checkpoint(self._store, base.checkpoint_id))
        if target.failure is not None:
            log.warning("retrying event %s the rebuild failed on", target.failure.event_id)
        return [target.moved(Trigger.CLAIMED)]

    async def after_batch(self, batch: Batch, targets: Sequence[Target]) -> Decision:
        [target] = targets
        if target.failure is not None:
            raise RebuildFailed(target.name, target.version, target.failure)
        self._progress.update(len(batch.events), target.position)
        now = self._clock()
        if now - self._heartbeat_at >= HEARTBEAT_EVERY:
            self._heartbeat_at = now
            await heartbeat(self._store, target.name, self._owner, now)
            self._progress.set_head(await self._events.head_position(self.event_types))
        if batch.caught_up and self._caught_up_at is None:
            log.info("v%d caught up at position %d", target.version, target.position)
            await self._store.ensure_indexes(target.collection, deferred_indexes(self._projection))
            log.info("v%d: secondary indexes created", target.version)
            now = self._caught_up_at = self._clock()
        if self._caught_up_at is None:
            return Decision.CONTINUE
        return await self._maybe_switch(target, now)

    async def _maybe_switch(self, target: Target, now: datetime) -> Decision:
        entry = await read_entry(self._store, target.name)
        active_id = collection_name(target.name, entry.active_version)
        active = await load_checkpoint(self._store, active_id)
        head = await self._events.head_position(self.event_types)
        assert self._caught_up_at is not None
        ready = (
            target.position >= head
            or active is None
            or target.position >= active.position
            or now - self._caught_up_at >= self._switch_wait
        )
        if not ready:
            return Decision.CONTINUE
        switched = await switch_active(
            self._store,
            target.name,
            owner=self._owner,
            old=entry.active_version,
            new=target.version,
            now=now,
        )
        if not switched:
            raise RebuildLost(f"projection {target.name!r}: the registry changed; not switched")
        self.previous_version = entry.active_version
        await save_checkpoints(self._store, [target.moved(Trigger.SWITCHED)], now)
        log.info(
            "projection %s: switched from v%d to v%d at position %d",
            target.name,
            entry.active_version,
            target.version,
            target.position,
        )
        return Decision.FINISH

    async def on_outage(self, reason: str, targets: Sequence[Target]) -> None:
        await save_checkpoints(self._store, targets, self._clock())


def unique_indexes(projection: Projection) -> list[IndexSpec]:
    """The indexes a rebuild creates before loading: the unique ones (constraints)."""
    return [index for index in projection.indexes if index.unique]


def deferred_indexes(projection: Projection) -> list[IndexSpec]:
    """The indexes a rebuild creates once it has caught up: all but the unique ones."""
    return [index for index in projection.indexes if not index.unique]


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def rebuild_projection(
    event_store: EventStoreReader,
    document_store: DocumentStore,
    registry: EventRegistry,
    projection: Projection,
    *,
    event_types: Sequence[str],
    options: RebuildOptions,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = utc_now,
) -> RebuildOutcome:
    """Build a new version of ``projection`` and switch to it; see the module docstring.

    Returns with ``switched`` False when ``stop`` was set first. Raises RebuildInProgress when
    another rebuild of it is running, RebuildFailed when the new version fails on an event.
    """
    name = projection.name
    owner = _owner_id()
    started = asyncio.get_running_loop().time()
    version, resumed = await claim_rebuild(document_store, name, owner, clock())
    collection = collection_name(name, version)
    if options.restart or not resumed:
        await drop_version(document_store, name, version)  # leftovers of an earlier attempt
        resumed = False
    await document_store.ensure_indexes(collection, unique_indexes(projection))
    start = await load_checkpoint(document_store, collection)
    head = await event_store.head_position(event_types)
    log.info(
        "projection %s: %s v%d from position %d (head %d)",
        name,
        "resuming" if resumed else "building",
        version,
        start.position if start else 0,
        head,
    )
    progress = CatchUpProgress(
        f"{name} v{version}",
        start=start.position if start else 0,
        head=head,
        enabled=options.show_progress,
        file=options.progress_file,
    )
    controller = RebuildController(
        document_store,
        event_store,
        projection,
        version=version,
        owner=owner,
        event_types=event_types,
        progress=progress,
        switch_wait_s=options.switch_wait_s,
        clock=clock,
    )
    runner = Runner(
        event_store, document_store, registry, settings=options.runner, stop=stop, clock=clock
    )
    try:
        await runner.run(controller)
    finally:
        progress.close()
        if not controller.switched and not (options.keep_claim and stop.is_set()):
            with contextlib.suppress(Exception):
                await release_rebuild(document_store, name, owner)
    if controller.switched:
        await _retire_after_grace(document_store, name, options.retire_grace_s, stop, clock)
    return RebuildOutcome(
        projection=name,
        version=version,
        previous_version=controller.previous_version,
        switched=controller.switched,
        resumed=resumed,
        events=progress.events,
        seconds=asyncio.get_running_loop().time() - started,
    )


async def _retire_after_grace(
    store: DocumentStore,
    name: str,
    grace_s: float,
    stop: asyncio.Event,
    clock: Callable[[], datetime],
) -> None:
    """Drop the old version once queries that resolved it had time to finish; on Ctrl-C the
    daemon (or the next rebuild) does it instead."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), grace_s)
    if stop.is_set():
        return
    entry = await read_entry(store, name)
    dropped = await drop_old_versions(store, entry, clock(), timedelta(seconds=grace_s))
    if dropped:
        log.info("projection %s: dropped old versions %s", name, dropped)
