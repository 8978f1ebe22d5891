"""A stopping instance keeps renewing its leases until its last batch and its ``stopped``
record are saved (a bug the soak harness's rolling restarts showed, issue 10; fixed in
``run_daemon``: the heartbeat outlives the stop request).

Before the fix the heartbeat ended the moment the stop was requested, while the instance went
on writing for up to ``STOP_GRACE_S`` and ``STOP_RECORD_TIMEOUT_S``. A lease counts as held only
until ``lease_s - safety(lease_s)`` after its last renewal, so a last batch longer than what was
left of that had its documents written and its checkpoint save refused (``LeaseLost``: "lease
no longer held ...; progress not saved"), contrary to "on a clean stop the leases are given back
at once, after the last batch was saved".

Here one instance with 1 s leases (0.8 s of validity after a renewal, renewed every 0.33 s)
feeds steady traffic; its stop is requested while a batch is being written, and that batch's
first read-model write takes ``SLOW_WRITE_S`` (a busy store; the whole batch stays well within
the stop grace). After the stop no read-model document may be ahead of its checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from projector.catalog import subscription_event_types
from projector.daemon import STOP_GRACE_S, run_daemon
from projector.leases import INSTANCES, LEASES, safety
from projector.projections import all_projections
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import CHECKPOINTS, POSITION_FIELD, resolve_active
from shared.ports.document_store import DocumentStore, WriteOp, WriteResult
from tests.fakes.event_store import InMemoryEventStore
from tests.projector.lease_support import NAMES, Traffic
from tests.projector.support import FAST, random_day, wait_for_position
from tests.projector.test_lease_failover import InstanceStore, Journal

LEASE_S = 1.0
# How long each read-model write takes once the stop was requested: longer than a lease stays
# valid after its last renewal, well within the stop grace (a load model, not a wait).
SLOW_WRITE_S = LEASE_S
assert LEASE_S - safety(LEASE_S) < SLOW_WRITE_S < STOP_GRACE_S / 2


class StopMidBatch(InstanceStore):
    """The instance's store: once ``armed``, the next read-model write requests the stop and
    then takes ``SLOW_WRITE_S``."""

    def __init__(self, inner: DocumentStore, journal: Journal, stop: asyncio.Event) -> None:
        super().__init__(inner, "instance-1", journal)
        self.stop = stop
        self.armed = False

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if self.armed and collection not in (CHECKPOINTS, LEASES, INSTANCES):
            self.armed = False
            self.stop.set()
            await asyncio.sleep(SLOW_WRITE_S)  # a busy store, see SLOW_WRITE_S
        return await super().bulk_write(collection, ops)


async def ahead_of_checkpoint(store: DocumentStore) -> list[str]:
    """Read models with a document past their checkpoint's position."""
    ahead = []
    for name in NAMES:
        active = await resolve_active(store, name)
        documents = await store.find(
            active.collection, {POSITION_FIELD: {"$gt": active.position}}, limit=1
        )
        ahead += [
            f"{name}: {d['_id']} at {d[POSITION_FIELD]} > {active.position}" for d in documents
        ]
    return ahead


async def test_a_stopping_instance_keeps_its_leases_until_its_last_batch_is_saved(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    traffic = Traffic(events, random_day())
    journal = Journal()
    stop = asyncio.Event()
    store = StopMidBatch(document_store, journal, stop)
    projections = list(all_projections())
    task = asyncio.create_task(
        run_daemon(
            events,
            store,
            build_order_event_registry(),
            projections,
            event_types=subscription_event_types(projections),
            settings=FAST,
            stop=stop,
            refresh_s=0.05,
            instance_id="instance-1",
            lease_s=LEASE_S,
        )
    )
    try:
        async with traffic.flowing():
            await wait_for_position(document_store, await traffic.mark(5), NAMES)
            store.armed = True
            await asyncio.wait_for(task, STOP_GRACE_S * 4)
    finally:
        stop.set()
        if not task.done():
            task.cancel()
    assert not store.armed, "the stop was never requested"
    assert not await ahead_of_checkpoint(document_store), (
        "the last batch was written but its checkpoint not saved: the lease lapsed while the "
        "instance stopped"
    )
    assert journal.released("instance-1") == set(NAMES)
