"""Where every projection stands: version, checkpoint, head, lag, state, rebuild progress.

``projection_statuses`` reads the registry, checkpoint and lease documents (MongoDB) and the
head of the log (event store); ``projector_instances`` lists the live projector instances and
the leases each holds. ``projector status`` prints both (``ProjectorReport``) and the API serves
them at ``GET /projections``. It only reads.

Lag in events is counted, not guessed, when it is small: the events of the projection's types
after its checkpoint are read (a filtered catch-up read, bounded by ``count_limit`` events and
``count_timeout_s``). Beyond the bound it is extrapolated from how densely those events sat in
the part read: positions are log offsets, not event counts. ``lag_events_exact`` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

from projector.checkpoint_store import CheckpointRecord, load_checkpoints
from projector.leases import live_instances, read_leases
from projector.lifecycle import (
    NOT_STARTED,
    Actor,
    State,
    Trigger,
    rebuild_owner_alive,
    transition,
)
from projector.progress import log_fraction
from projector.projection import Projection
from projector.projections import all_projections
from shared.contract.read_models import FailedEvent, RegistryEntry, collection_name, read_registry
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import CaughtUp, EventStoreReader, RecordedEvent


class RebuildStatus(BaseModel):
    version: int
    checkpoint_position: int
    progress: float = Field(
        description="How far through the log (by position, 0..1) the new version has read; "
        "approximate, since positions are log offsets rather than event counts"
    )
    state: State
    running: bool = Field(description="Whether a rebuild process is working on it right now")
    error: FailedEvent | None = None


class ProjectionStatus(BaseModel):
    name: str
    version: int = Field(description="The active version (the one queries read)")
    collection: str
    state: State = Field(
        description="live, catching_up, failed (stopped on an event, see error; waits for an "
        "operator), failing (an error that is neither an event's fault nor an outage, such as "
        "MongoDB refusing a read, see reason; retried with backoff while the other projections "
        "carry on), store_unavailable (see reason), stopped (the daemon exited cleanly), "
        "not_started; a rebuild in progress is under 'rebuilding'"
    )
    checkpoint_position: int
    head_position: int | None = Field(
        description="Position of the newest event of this projection's types (None when the "
        "event store cannot be reached)"
    )
    lag_events: int | None = Field(
        description="Approximate number of this projection's events not yet applied: counted "
        "exactly up to a bound, extrapolated from position density beyond it"
    )
    lag_events_exact: bool
    lag_seconds: float | None = Field(
        description="0 when nothing is pending; otherwise the age of the oldest event not yet "
        "applied (or, when unknown, of the last event applied)"
    )
    last_event_at: datetime | None = Field(description="Record time of the last event applied")
    updated_at: datetime | None
    error: FailedEvent | None = None
    reason: str | None = Field(
        default=None, description="Why a store is unavailable, or why the projection is failing"
    )
    rebuilding: RebuildStatus | None = None
    owner: str | None = Field(
        default=None,
        description="The projector instance feeding it (holding its lease); null while no live "
        "instance holds it (none runs, or its owner died and the lease has not expired yet)",
    )
    lease_expires_at: datetime | None = Field(
        default=None, description="When the owner's lease runs out unless renewed"
    )


class InstanceStatus(BaseModel):
    """A live projector instance (``projector run``) and the projections it feeds."""

    instance_id: str = Field(description="PROJECTOR_INSTANCE_ID, by default <hostname>:<pid>")
    started_at: datetime | None
    heartbeat_at: datetime | None
    expires_at: datetime = Field(description="When it stops counting as live without a heartbeat")
    leases: list[str] = Field(description="The projections whose lease it holds")


class ProjectorReport(BaseModel):
    """Every projection's status and the live projector instances (``projector status``)."""

    projections: list[ProjectionStatus]
    instances: list[InstanceStatus]


@dataclass(frozen=True, slots=True)
class PendingEvents:
    count: int
    exact: bool
    oldest_recorded_at: datetime | None


async def count_pending(
    events: EventStoreReader,
    after: int,
    event_types: Sequence[str],
    head: int,
    *,
    limit: int,
    timeout_s: float,
) -> PendingEvents:
    """Events of ``event_types`` after ``after`` up to ``head`` (see the module docstring)."""
    if head <= after or not event_types:
        return PendingEvents(0, True, None)
    count, last, oldest = 0, after, None
    items = events.subscribe_all(after or None, event_types)
    try:
        async with asyncio.timeout(timeout_s):
            async for item in items:
                if isinstance(item, CaughtUp):
                    last = head
                    break
                if isinstance(item, RecordedEvent):
                    count += 1
                    last = item.position
                    oldest = oldest or item.recorded_at
                    if item.position >= head or count >= limit:
                        break
    except TimeoutError:
        pass
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    if last >= head:
        return PendingEvents(count, True, oldest)
    if count and last > after:
        return PendingEvents(round(count * (head - after) / (last - after)), False, oldest)
    return PendingEvents(max(count, 1), False, oldest)


def _lag_seconds(
    pending: PendingEvents | None, last_event_at: datetime | None, now: datetime
) -> float | None:
    if pending is not None and pending.count == 0:
        return 0.0
    since = (pending.oldest_recorded_at if pending else None) or last_event_at
    return max((now - since).total_seconds(), 0.0) if since else None


async def _head(events: EventStoreReader, event_types: Iterable[str]) -> int | None:
    if not event_types:
        return 0
    try:
        return await events.head_position(sorted(event_types))
    except StoreUnavailable:
        return None


async def projection_statuses(
    document_store: DocumentStore,
    event_store: EventStoreReader,
    projections: Sequence[Projection] | None = None,
    *,
    count_limit: int = 1000,
    count_timeout_s: float = 2.0,
) -> list[ProjectionStatus]:
    """The status of every projection (``all_projections()`` unless given), in order."""
    chosen = list(projections) if projections is not None else all_projections()
    entries = await read_registry(document_store, [p.name for p in chosen])
    ids = [collection_name(p.name, entries[p.name].active_version) for p in chosen]
    ids += [
        collection_name(name, entry.rebuilding_version)
        for name, entry in entries.items()
        if entry.rebuilding_version is not None
    ]
    records = await load_checkpoints(document_store, ids)
    leases = await read_leases(document_store)
    now = utc_now()
    statuses = []
    for projection in chosen:
        entry = entries[projection.name]
        collection = collection_name(projection.name, entry.active_version)
        record = records.get(collection)
        head = await _head(event_store, projection.event_types)
        position = record.position if record else 0
        pending = None
        if head is not None:
            with contextlib.suppress(StoreUnavailable):
                pending = await count_pending(
                    event_store,
                    position,
                    sorted(projection.event_types),
                    head,
                    limit=count_limit,
                    timeout_s=count_timeout_s,
                )
        lease = leases.get(projection.name)
        held = lease if lease is not None and lease.live(now) else None
        rebuilding = None
        if entry.rebuilding_version is not None:
            rebuild_id = collection_name(projection.name, entry.rebuilding_version)
            rebuilding = _rebuild_status(
                entry.rebuilding_version, records.get(rebuild_id), head, entry, now
            )
        statuses.append(
            ProjectionStatus(
                name=projection.name,
                version=entry.active_version,
                collection=collection,
                state=(record.standing if record else NOT_STARTED).state,
                checkpoint_position=position,
                head_position=head,
                lag_events=pending.count if pending else None,
                lag_events_exact=pending.exact if pending else False,
                lag_seconds=_lag_seconds(pending, record.last_event_at if record else None, now),
                last_event_at=record.last_event_at if record else None,
                updated_at=record.updated_at if record else None,
                error=record.failure if record else None,
                reason=record.reason if record else None,
                rebuilding=rebuilding,
                owner=held.owner if held else None,
                lease_expires_at=held.expires_at if held else None,
            )
        )
    return statuses


async def projector_instances(document_store: DocumentStore) -> list[InstanceStatus]:
    """The live projector instances, by id, with the leases each holds."""
    now = utc_now()
    leases = await read_leases(document_store)
    held: dict[str, list[str]] = {}
    for lease in sorted(leases.values(), key=lambda lease: lease.projection):
        if lease.live(now) and lease.owner is not None:
            held.setdefault(lease.owner, []).append(lease.projection)
    return [
        InstanceStatus(
            instance_id=instance.instance_id,
            started_at=instance.started_at,
            heartbeat_at=instance.heartbeat_at,
            expires_at=instance.expires_at,
            leases=held.get(instance.instance_id, []),
        )
        for instance in await live_instances(document_store, now)
    ]


async def projector_report(
    document_store: DocumentStore, event_store: EventStoreReader
) -> ProjectorReport:
    """``projection_statuses`` and ``projector_instances`` together."""
    return ProjectorReport(
        projections=await projection_statuses(document_store, event_store),
        instances=await projector_instances(document_store),
    )


def _rebuild_status(
    version: int,
    record: CheckpointRecord | None,
    head: int | None,
    entry: RegistryEntry,
    now: datetime,
) -> RebuildStatus:
    position = record.position if record else 0
    # Claimed but without a checkpoint yet: where a claim puts a version.
    claimed = transition(NOT_STARTED, Trigger.CLAIMED, Actor.REBUILD)
    standing = record.standing if record else claimed
    return RebuildStatus(
        version=version,
        checkpoint_position=position,
        progress=log_fraction(position, 0, head) if head else 0.0,
        state=standing.state,
        running=rebuild_owner_alive(entry, now),
        error=record.failure if record else None,
    )
