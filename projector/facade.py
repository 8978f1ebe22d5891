"""The API's view of the projector: the only projector module ``orders_api`` may import.

The API shows where projections stand (readiness, ``/metrics``, ``GET /projections``, admin),
starts and follows rebuilds, and lists and parks dead letters. It does all of that through the
few names here, so the projector's internals (registry, checkpoints, runner, catalog) can be
reshaped without touching the API; ``tests/api/test_projector_boundary.py`` fails if an
``orders_api`` module imports any other projector module.

Everything here delegates to the projector module that owns the fact and does no I/O of its
own. Only what the API uses belongs here: add a name when the API needs it, not before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from projector.catalog import subscription_event_types
from projector.dead_letters import (
    DeadLetter,
    NothingToPark,
    dead_letter_counts,
    list_dead_letters,
    park_failed_event,
)
from projector.lifecycle import STATES, rebuild_owner_alive
from projector.projection import Projection
from projector.projections import UnknownProjection, all_projections, projection_by_name
from projector.rebuild import (
    RebuildFailed,
    RebuildLost,
    RebuildOptions,
    RebuildOutcome,
    rebuild_projection,
)
from projector.status import (
    InstanceStatus,
    ProjectionStatus,
    projection_statuses,
    projector_instances,
)
from projector.version_registry import RebuildInProgress, read_entry
from shared.contract.order_events import build_order_event_registry
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStoreReader

# Every value ``ProjectionStatus.state`` can take (the states of the metrics' state enum).
PROJECTION_STATES: tuple[str, ...] = STATES


async def rebuild(
    events: EventStoreReader,
    documents: DocumentStore,
    projection: Projection,
    *,
    retire_grace_s: float,
    stop: asyncio.Event,
    clock: Callable[[], datetime],
) -> RebuildOutcome:
    """Rebuild ``projection`` without downtime, as ``projector rebuild`` does: over the order
    events, with the daemon's subscription filter (so checkpoints compare), printing nothing.

    Raises RebuildInProgress (another process holds the claim), RebuildFailed (the new version
    stopped on an event) or RebuildLost (the claim was taken over).
    """
    return await rebuild_projection(
        events,
        documents,
        build_order_event_registry(),
        projection,
        event_types=subscription_event_types(all_projections()),
        options=RebuildOptions(retire_grace_s=retire_grace_s, show_progress=False),
        stop=stop,
        clock=clock,
    )


async def live_rebuild(documents: DocumentStore, name: str, now: datetime) -> int | None:
    """The version a live rebuild of ``name`` is building (claimed, its owner's heartbeat fresh
    at ``now``); None when no rebuild of it is alive."""
    entry = await read_entry(documents, name)
    return entry.rebuilding_version if rebuild_owner_alive(entry, now) else None


__all__ = [
    "PROJECTION_STATES",
    "DeadLetter",
    "InstanceStatus",
    "NothingToPark",
    "Projection",
    "ProjectionStatus",
    "RebuildFailed",
    "RebuildInProgress",
    "RebuildLost",
    "RebuildOutcome",
    "UnknownProjection",
    "dead_letter_counts",
    "list_dead_letters",
    "live_rebuild",
    "park_failed_event",
    "projection_by_name",
    "projection_statuses",
    "projector_instances",
    "rebuild",
]
