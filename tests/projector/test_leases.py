"""Leases between projector instances (``projector.leases``), on the real document store, with
clocks the tests move: who holds what, spreading, expiry and takeover, giving back, fencing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projector.batching import Batch
from projector.catalog import subscription_event_types
from projector.checkpoint_store import Target, load_checkpoint, save_checkpoints, stamp_fence
from projector.daemon import DaemonController
from projector.leases import (
    INSTANCES,
    LEASES,
    Lease,
    LeaseKeeper,
    LeaseLost,
    fair_share,
    live_instances,
    read_leases,
)
from projector.lifecycle import REBUILD_STALE_AFTER
from projector.projections import OrderViews, all_projections
from projector.runner import Decision, RunnerSettings
from projector.status import projection_statuses, projector_instances
from projector.version_registry import read_entry
from shared.contract.read_models import REGISTRY, RegistryEntry
from shared.ports.document_store import (
    DocumentStore,
    ReplaceOne,
    UpdateOne,
    WriteOp,
    WriteResult,
)
from tests.fakes.document_store import DelegatingDocumentStore
from tests.fakes.event_store import InMemoryEventStore
from tests.projector.support import (
    FAST,
    Order,
    append_orders,
    random_day,
    running_daemon,
    wait_for_position,
)
from tests.waiting import wait_until

NAMES = ("order_views", "customer_summaries", "daily_sales")
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
LEASE_S = 10.0


class Clocks:
    """One wall clock and one monotonic clock for every keeper of a test, moved by hand."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 12, 6, 12, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


class Takeovers:
    def __init__(self) -> None:
        self.held = -1
        self.taken: list[str] = []

    def leases_held(self, count: int) -> None:
        self.held = count

    def lease_taken_over(self, projection: str) -> None:
        self.taken.append(projection)


def keeper(
    store: DocumentStore, clocks: Clocks, name: str, observer: Takeovers | None = None
) -> LeaseKeeper:
    return LeaseKeeper(
        store,
        NAMES,
        instance_id=name,
        lease_s=LEASE_S,
        clock=clocks.now,
        monotonic=clocks.monotonic,
        observer=observer,
    )


async def owners(store: DocumentStore, clocks: Clocks) -> dict[str, str | None]:
    leases = await read_leases(store)
    return {
        name: lease.owner if lease.live(clocks.now()) else None for name, lease in leases.items()
    }


def test_fair_share() -> None:
    assert [fair_share(3, n) for n in (0, 1, 2, 3, 4)] == [3, 3, 2, 1, 1]


async def test_a_lone_instance_takes_every_lease(document_store: DocumentStore) -> None:
    clocks = Clocks()
    a = keeper(document_store, clocks, "a")
    await a.tick()
    assert set(a.held()) == set(NAMES)
    assert await owners(document_store, clocks) == dict.fromkeys(NAMES, "a")
    assert [i.instance_id for i in await live_instances(document_store, clocks.now())] == ["a"]


async def test_two_instances_share_three_projections(document_store: DocumentStore) -> None:
    clocks = Clocks()
    a, b = keeper(document_store, clocks, "a"), keeper(document_store, clocks, "b")
    await a.tick()
    assert len(a.held()) == 3
    # b joins: a sees it on its next heartbeat and offers one lease for handing over; with no
    # feeder to hand it over, it is given back at the heartbeat after; b takes it.
    for _ in range(3):
        await b.tick()
        await a.tick()
    assert sorted([len(a.held()), len(b.held())]) == [1, 2]
    assert not set(a.held()) & set(b.held())
    assert set(a.held()) | set(b.held()) == set(NAMES)


async def test_three_instances_hold_one_each(document_store: DocumentStore) -> None:
    clocks = Clocks()
    keepers = [keeper(document_store, clocks, name) for name in ("a", "b", "c")]
    for _ in range(6):
        for each in keepers:
            await each.tick()
    assert [len(each.held()) for each in keepers] == [1, 1, 1]


async def offering(
    store: DocumentStore, clocks: Clocks
) -> tuple[LeaseKeeper, LeaseKeeper, dict[str, Lease], str]:
    """a holds every lease, b joins short of its share, and a offers one lease to its feeder:
    (a, b, the leases a held before, the projection offered)."""
    a, b = keeper(store, clocks, "a"), keeper(store, clocks, "b")
    await a.tick()
    await b.tick()
    a.changed.clear()
    writable = a.held()
    await a.tick()
    [name] = set(NAMES) - set(a.held())
    assert a.changed.is_set()  # the feeder stops feeding it
    # Still a's and writable while the feeder finishes the batch in flight.
    assert writable[name].held()
    assert (await owners(store, clocks))[name] == "a"
    return a, b, writable, name


async def test_a_lease_above_the_share_is_handed_over_by_the_feeder_first(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a, b, writable, name = await offering(document_store, clocks)
    a.changed.clear()
    await a.hand_over()  # the feeder stopped feeding it
    assert not a.changed.is_set()  # nothing more for the feeder to do
    assert (await owners(document_store, clocks))[name] is None
    await b.tick()
    assert set(b.held()) == {name}
    assert b.held()[name].token > writable[name].token
    assert not writable[name].held()


async def test_a_lease_the_feeder_does_not_hand_over_is_given_back_at_the_next_heartbeat(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a, _, writable, name = await offering(document_store, clocks)
    await a.tick()  # not handed over since: given back, and no longer writable
    assert not writable[name].held()
    assert (await owners(document_store, clocks))[name] is None
    assert len(a.held()) == 2


async def test_a_dead_owners_leases_are_taken_over_once_expired(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    seen = Takeovers()
    a, b = keeper(document_store, clocks, "a"), keeper(document_store, clocks, "b", seen)
    await a.tick()
    await b.tick()
    assert not b.held()  # a holds its share of two... and the third until it sees b
    # a dies: no more heartbeats. Before its leases expire, b takes nothing of a's.
    taken_by_a = set(a.held())
    clocks.advance(LEASE_S - 1)
    await b.tick()
    assert not set(b.held()) & taken_by_a
    clocks.advance(1.5)
    await b.tick()
    assert set(b.held()) == set(NAMES)
    assert sorted(seen.taken) == sorted(taken_by_a)
    assert seen.held == 3
    # a, paused rather than dead, no longer counts its leases as held: it writes nothing.
    assert not a.held()


async def test_a_lease_stops_counting_as_held_before_the_others_may_take_it(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a = keeper(document_store, clocks, "a")
    await a.tick()
    leases = a.held()
    clocks.advance(LEASE_S - 2.5)
    assert all(lease.held() for lease in leases.values())
    clocks.advance(1)  # within the safety margin: no longer held here, not yet expired there
    assert not any(lease.held() for lease in leases.values())
    assert set((await owners(document_store, clocks)).values()) == {"a"}


async def test_heartbeats_keep_the_leases(document_store: DocumentStore) -> None:
    clocks = Clocks()
    a, b = keeper(document_store, clocks, "a"), keeper(document_store, clocks, "b")
    await a.tick()
    await b.tick()
    before = {name: lease.token for name, lease in a.held().items()}
    for _ in range(10):
        clocks.advance(a.renew_every_s)
        await a.tick()
        await b.tick()
    assert {name: lease.token for name, lease in a.held().items()}.items() >= (
        {name: before[name] for name in a.held()}.items()
    )
    assert len(a.held()) + len(b.held()) == 3


async def test_releasing_hands_over_without_waiting_for_expiry(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a, b = keeper(document_store, clocks, "a"), keeper(document_store, clocks, "b")
    await a.tick()
    await b.tick()
    await a.release_all()
    assert [i.instance_id for i in await live_instances(document_store, clocks.now())] == ["b"]
    await b.tick()  # no time has passed
    assert set(b.held()) == set(NAMES)


async def test_each_taking_gets_a_greater_token(document_store: DocumentStore) -> None:
    clocks = Clocks()
    a = keeper(document_store, clocks, "a")
    await a.tick()
    first = a.held()["order_views"].token
    await a.release_all()
    await a.tick()
    assert a.held()["order_views"].token > first
    # Even when the lease collection is lost, a new token outgrows the old ones (wall clock).
    await document_store.drop_collection(LEASES)
    await document_store.drop_collection(INSTANCES)
    await a.verify()
    clocks.advance(1)
    await a.tick()
    assert a.held()["order_views"].token > first


async def test_a_checkpoint_takes_saves_only_under_the_newest_stamped_token(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    old, new = keeper(document_store, clocks, "old"), keeper(document_store, clocks, "new")
    await old.tick()
    lease = old.held()["order_views"]
    zombie = Target(OrderViews(), 1, lease=lease)
    assert await stamp_fence(document_store, zombie.checkpoint_id, lease.token)
    await save_checkpoints(document_store, [zombie.__replace__(position=10)], clocks.now())
    # old's lease expires; new takes it and stamps the checkpoint.
    clocks.advance(LEASE_S + 1)
    await new.tick()
    newer = new.held()["order_views"]
    assert newer.token > lease.token
    assert await stamp_fence(document_store, zombie.checkpoint_id, newer.token)
    assert not await stamp_fence(document_store, zombie.checkpoint_id, lease.token)
    # The zombie's save, even of a position further on, is refused and changes nothing.
    with pytest.raises(LeaseLost):
        await save_checkpoints(document_store, [zombie.__replace__(position=50)], clocks.now())
    record = await load_checkpoint(document_store, zombie.checkpoint_id)
    assert record is not None and record.position == 10
    owner = Target(OrderViews(), 1, position=10, lease=newer)
    await save_checkpoints(document_store, [owner.__replace__(position=20)], clocks.now())
    record = await load_checkpoint(document_store, zombie.checkpoint_id)
    assert record is not None and record.position == 20


async def test_a_rebuilds_save_leaves_a_stamped_checkpoint_alone(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a = keeper(document_store, clocks, "a")
    await a.tick()
    lease = a.held()["order_views"]
    daemon = Target(OrderViews(), 2, position=30, lease=lease)
    await stamp_fence(document_store, daemon.checkpoint_id, lease.token)
    await save_checkpoints(document_store, [daemon], clocks.now())
    rebuild = Target(OrderViews(), 2, position=5)  # a late save of the rebuild that switched
    await save_checkpoints(document_store, [rebuild], clocks.now())
    record = await load_checkpoint(document_store, daemon.checkpoint_id)
    assert record is not None and record.position == 30


async def test_status_names_each_projections_owner_and_the_live_instances(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    async with running_daemon(events, document_store, instance_id="solo"):

        async def fed() -> bool:
            statuses = await projection_statuses(document_store, events)
            return all(status.owner == "solo" for status in statuses)

        await wait_until(fed, "every projection owned by the one instance")
        [instance] = await projector_instances(document_store)
        assert instance.instance_id == "solo"
        assert sorted(instance.leases) == sorted(NAMES)
        [status, *_] = await projection_statuses(document_store, events)
        assert status.lease_expires_at is not None
    # A clean stop gives the leases back and withdraws the instance.
    assert await projector_instances(document_store) == []
    assert all(s.owner is None for s in await projection_statuses(document_store, events))


async def test_a_rebuild_whose_runner_died_is_resumed_by_the_lease_holder(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    orders = [Order(f"c-{n}", ending="paid") for n in range(3)]
    last = await append_orders(events, orders, random_day())
    # A rebuild of order_views to v2 was claimed by a process that died: its heartbeat is stale
    # (it never gave the claim up, as a killed process does not).
    stale = datetime.now(UTC) - REBUILD_STALE_AFTER - timedelta(seconds=1)
    claim = RegistryEntry(
        "order_views",
        active_version=1,
        rebuilding_version=2,
        rebuild_owner="gone:4242:cafe",
        rebuild_heartbeat_at=stale,
    ).to_document()
    await document_store.bulk_write(
        REGISTRY, [ReplaceOne({"_id": "order_views"}, claim, upsert=True)]
    )
    async with running_daemon(events, document_store, instance_id="heir"):

        async def switched() -> bool:
            return (await read_entry(document_store, "order_views")).active_version == 2

        await wait_until(switched, "the lease holder to resume the rebuild and switch to v2")
        await wait_for_position(document_store, last)
    entry = await read_entry(document_store, "order_views")
    assert (entry.rebuilding_version, entry.rebuild_owner) == (None, None)
    for order in orders:
        view = await document_store.find_one("order_views_v2", {"_id": str(order.order_id)})
        assert view is not None and view["status"] == "paid"


async def test_a_late_heartbeat_renews_a_lease_not_yet_expired_with_its_token(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a = keeper(document_store, clocks, "a")
    await a.tick()
    tokens = {name: lease.token for name, lease in a.held().items()}
    leases = a.held()
    # The heartbeat comes late: past the validity here, not yet expired in the store.
    clocks.advance(LEASE_S - 1)
    assert not any(lease.held() for lease in leases.values())
    a.changed.clear()
    await a.tick()
    assert {name: lease.token for name, lease in a.held().items()} == tokens
    assert all(lease.held() for lease in leases.values())  # the very leases, written under again
    assert a.changed.is_set()  # the daemon feeds them again
    # Too late (expired in the store too): taken again, under a new token.
    clocks.advance(LEASE_S + 1)
    await a.tick()
    assert all(a.held()[name].token > tokens[name] for name in NAMES)


async def test_a_standby_takes_a_lease_given_back_without_waiting_for_its_heartbeat(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()

    def slow(name: str) -> LeaseKeeper:  # heartbeats every 200 s: only the standby watch acts
        return LeaseKeeper(
            document_store,
            NAMES,
            instance_id=name,
            lease_s=600,
            clock=clocks.now,
            monotonic=clocks.monotonic,
        )

    a, b = slow("a"), slow("b")
    await a.tick()
    await b.tick()
    assert (len(a.held()), len(b.held())) == (3, 0)  # b is short of its share of 2
    stop = asyncio.Event()
    heartbeat = asyncio.create_task(b.run(stop))
    try:

        async def taken() -> bool:
            return set(b.held()) == {"order_views"}

        # One lease is given back (as a rebalancing instance does), the others stay a's.
        await document_store.bulk_write(
            LEASES,
            [UpdateOne({"_id": "order_views"}, {"$set": {"owner": None, "expires_at": NEVER}})],
        )
        await wait_until(taken, "the standby to take the lease given back")
    finally:
        stop.set()
        await heartbeat


async def test_the_feeder_hands_a_lease_over_between_batches_never_mid_batch(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    a, b = keeper(document_store, clocks, "a"), keeper(document_store, clocks, "b")
    projections = all_projections()
    feeder = DaemonController(
        document_store,
        projections,
        subscription_event_types(projections),
        clock=clocks.now,
        leases=a,
    )
    await a.tick()
    targets = await feeder.start_session([])
    assert sorted(t.name for t in targets) == sorted(NAMES)
    await b.tick()  # b joins, short of its share
    await a.tick()  # a offers one lease
    # The batch in flight may still write under every lease it started with...
    assert all(target.writable for target in targets)
    assert feeder.wake is a.changed and a.changed.is_set()
    # ...and once it is saved, the feeder starts over without the lease and hands it over.
    assert await feeder.after_batch(Batch(), targets) is Decision.RESTART
    kept = await feeder.start_session(targets)
    [handed] = set(NAMES) - {t.name for t in kept}
    assert not a.changed.is_set()
    assert (await owners(document_store, clocks))[handed] is None
    await b.tick()
    assert set(b.held()) == {handed}


async def test_an_instance_feeding_nothing_starts_as_soon_as_it_takes_a_lease(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    last = await append_orders(events, [Order("c-1", ending="paid")], random_day())
    holder = LeaseKeeper(document_store, NAMES, instance_id="holder", lease_s=600)
    await holder.tick()  # every lease, for 10 minutes
    # b heartbeats every 200 s and looks around every 10 minutes when it has nothing to feed:
    # only its standby watch and the wake-up of its idle session can make it start.
    patient = RunnerSettings(batch_size=FAST.batch_size, idle_s=600)
    async with running_daemon(
        events, document_store, settings=patient, instance_id="b", lease_s=600
    ):

        async def idle() -> bool:
            instances = await projector_instances(document_store)
            return any(i.instance_id == "b" and not i.leases for i in instances)

        await wait_until(idle, "b to feed nothing")
        await holder.release_all()
        await wait_for_position(document_store, last, ["order_views"])


class SlowLeaseWrites(DelegatingDocumentStore):
    """A busy store for one instance: once ``armed``, each lease write takes ``SLOW_S``."""

    SLOW_S = 0.6  # well over the standby watch's poll (STANDBY_POLL_S): a load model

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.armed = False

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if self.armed and collection == LEASES:
            await asyncio.sleep(self.SLOW_S)  # the busy store, see SLOW_S
        return await super().bulk_write(collection, ops)


async def test_a_standby_takes_every_lease_of_a_stopping_instance_however_slowly_it_gives_back(
    document_store: DocumentStore,
) -> None:
    busy = SlowLeaseWrites(document_store)
    leaving = LeaseKeeper(busy, NAMES, instance_id="leaving", lease_s=600)
    # b heartbeats every 200 s: only its standby watch acts within this test.
    b = LeaseKeeper(document_store, NAMES, instance_id="b", lease_s=600)
    await leaving.tick()
    await b.tick()
    assert (len(leaving.held()), len(b.held())) == (3, 0)
    stop = asyncio.Event()
    heartbeat = asyncio.create_task(b.run(stop))
    try:
        busy.armed = True
        # The leases come back one by one, well apart: b must not settle for the share it had
        # beside the leaving instance (2 of 3) when it sees the first of them.
        await leaving.release_all()

        async def all_taken() -> bool:
            return set(b.held()) == set(NAMES)

        await wait_until(all_taken, "b to take every lease given back")
    finally:
        stop.set()
        await heartbeat


class HeldLeaseReads(DelegatingDocumentStore):
    """Once ``armed``, the next read of the leases is answered at once but delivered only when
    ``deliver`` is set: a read on its way while other work goes on."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.armed = False
        self.answered, self.deliver = asyncio.Event(), asyncio.Event()

    async def find(self, collection: str, filter: Any, **options: Any) -> list[Any]:
        found = await super().find(collection, filter, **options)
        if self.armed and collection == LEASES:
            self.armed = False
            self.answered.set()
            await self.deliver.wait()
        return found


async def test_a_lease_taken_while_a_verify_read_is_on_its_way_is_not_lost(
    document_store: DocumentStore,
) -> None:
    clocks = Clocks()
    store = HeldLeaseReads(document_store)
    a = keeper(store, clocks, "a")  # type: ignore[arg-type]
    store.armed = True
    verifying = asyncio.create_task(a.verify())  # the feeder, between two batches
    await asyncio.wait_for(store.answered.wait(), 5)  # it read: no lease is a's yet
    await a.tick()  # meanwhile the heartbeat takes every lease
    assert set(a.held()) == set(NAMES)
    store.deliver.set()
    await asyncio.wait_for(verifying, 5)
    assert set(a.held()) == set(NAMES)
    await a.tick()  # renewed as its own, not left to expire
    assert await owners(document_store, clocks) == dict.fromkeys(NAMES, "a")
