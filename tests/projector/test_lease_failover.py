"""Several projector instances sharing the projections through leases, in one process (fast and
exact): how they spread, kill -9 of owners under traffic (repeatedly, at random points), a clean
stop handing over at once, and what fencing guarantees: every read model equals a clean rebuild
and no checkpoint ever moves backwards.

Each instance is ``run_daemon`` in a task with a store of its own (``InstanceStore``) over the one
real MongoDB database: it records every checkpoint and lease write the instance makes, and can
be killed: from some call on, every call hangs forever (calls already made still land, as after
a kill -9); the task is then cancelled, and its attempt to give its leases back hangs too, so its
leases must expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from projector.catalog import subscription_event_types
from projector.checkpoint_store import stamp_fence
from projector.daemon import run_daemon
from projector.leases import LEASES, LeaseDocument, live_instances, read_leases
from projector.projection import Projection
from projector.projections import CustomerSummaries, OrderViews, all_projections
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import (
    CHECKPOINTS,
    FENCE_FIELD,
    FENCED_AT_FIELD,
    collection_name,
)
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import (
    Document,
    DocumentStore,
    Filter,
    IndexSpec,
    UpdateOne,
    WriteOp,
    WriteResult,
)
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import SubscriptionItem
from tests.conftest import unique
from tests.fakes.event_store import InMemoryEventStore
from tests.projector.lease_support import (
    CATCH_UP_S,
    NAMES,
    CheckpointWatch,
    Traffic,
    clean_rebuild,
    differences,
    fenced_by_owners,
    head,
    live_leases,
    owned_by,
    read_models,
    spread_as,
    summary,
    taken_from,
)
from tests.projector.support import FAST, Order, append_orders, random_day, wait_for_position
from tests.waiting import wait_until

LEASE_S = 2.0
# A clean stop must hand over before the old lease expires: the new owner takes it on its next
# heartbeat (every LEASE_S / 3), the old lease expires LEASE_S after its last renewal (up to
# LEASE_S / 3 before the stop). A longer lease leaves that proof room on a busy machine.
STOP_LEASE_S = 6.0
KILLS = 12
TIMES_FILE = Path("/tmp/failover-times.txt")


@dataclass(frozen=True, slots=True)
class CheckpointWrite:
    """One checkpoint operation an instance made: a save (``position``) or a fence stamp
    (``position`` None), under ``token``; ``landed``: it changed the document."""

    instance: str
    checkpoint_id: str
    position: int | None
    token: int | None
    landed: bool


@dataclass(frozen=True, slots=True)
class LeaseWrite:
    """One lease operation an instance made: a take or renewal (``expires_at``) or a release
    (``owner`` None)."""

    instance: str
    projection: str
    owner: str | None
    expires_at: datetime | None
    landed: bool


@dataclass
class Journal:
    """Every checkpoint and lease write of every instance, in the order they completed."""

    checkpoints: list[CheckpointWrite] = field(default_factory=list)
    leases: list[LeaseWrite] = field(default_factory=list)

    def backwards(self) -> list[str]:
        """Landed checkpoint writes that moved a position or a fence back (per document)."""
        found: list[str] = []
        positions: dict[str, CheckpointWrite] = {}
        tokens: dict[str, CheckpointWrite] = {}
        for write in (w for w in self.checkpoints if w.landed):
            last = positions.get(write.checkpoint_id)
            if write.position is not None:
                if (
                    last is not None
                    and last.position is not None
                    and write.position < last.position
                ):
                    found.append(f"{write} after {last}")
                positions[write.checkpoint_id] = write
            fenced = tokens.get(write.checkpoint_id)
            if write.token is not None:
                if fenced is not None and fenced.token is not None and write.token < fenced.token:
                    found.append(f"{write} after {fenced}")
                tokens[write.checkpoint_id] = write
        return found

    def last_expiry(self, instance: str, projection: str) -> datetime | None:
        """The latest expiry ``instance`` wrote on the lease of ``projection``."""
        expiries = [
            w.expires_at
            for w in self.leases
            if w.instance == instance
            and w.projection == projection
            and w.landed
            and w.owner == instance
            and w.expires_at is not None
        ]
        return max(expiries, default=None)

    def released(self, instance: str) -> set[str]:
        return {
            w.projection
            for w in self.leases
            if w.instance == instance and w.owner is None and w.landed
        }


class InstanceStore:
    """One instance's view of the real document store: records its checkpoint and lease writes
    in the journal, and can be killed (``kill_after``)."""

    def __init__(self, inner: DocumentStore, instance_id: str, journal: Journal) -> None:
        self.inner = inner
        self.instance_id = instance_id
        self.journal = journal
        self.killed_at: datetime | None = None
        self.before_checkpoint_write: Callable[[Sequence[WriteOp]], Awaitable[None]] | None = None
        self._countdown: int | None = None
        self._never = asyncio.Event()

    @property
    def dead(self) -> bool:
        return self.killed_at is not None

    def kill_after(self, calls: int) -> None:
        """Die at the ``calls``-th call from now (0: the next one): it and every later call hang
        forever; calls already made go on and land."""
        self._countdown = calls

    async def _call(self) -> None:
        if self._countdown is not None:
            if self._countdown == 0:
                self._countdown = None
                self.killed_at = utc_now()
            else:
                self._countdown -= 1
        if self.dead:
            await self._never.wait()

    async def find_one(self, collection: str, filter: Filter) -> Document | None:
        await self._call()
        return await self.inner.find_one(collection, filter)

    async def find(self, collection: str, filter: Filter, **options: Any) -> list[Document]:
        await self._call()
        return await self.inner.find(collection, filter, **options)

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        await self._call()
        return await self.inner.find_by_ids(collection, ids)

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        await self._call()
        if collection != CHECKPOINTS:
            result = await self.inner.bulk_write(collection, ops)
            if collection == LEASES:
                self._record_leases(ops, landed=result.changed == len(ops))
            return result
        if self.before_checkpoint_write is not None:
            await self.before_checkpoint_write(ops)
        # One operation at a time, as MongoDB applies an ordered bulk write, so that the
        # outcome of each is known.
        changed = 0
        for op in ops:
            result = await self.inner.bulk_write(collection, [op])
            changed += result.changed
            self._record_checkpoint(op, landed=result.changed == 1)
        return WriteResult(changed)

    def _record_checkpoint(self, op: WriteOp, *, landed: bool) -> None:
        assert isinstance(op, UpdateOne) and isinstance(op.update, dict), op
        fields = op.update["$set"]
        if "position" in fields:
            position, token = fields["position"], op.filter.get(FENCE_FIELD)
        else:
            assert set(fields) == {FENCE_FIELD, FENCED_AT_FIELD}, op  # a stamp sets nothing else
            position, token = None, fields[FENCE_FIELD]
        self.journal.checkpoints.append(
            CheckpointWrite(self.instance_id, str(op.filter["_id"]), position, token, landed)
        )

    def _record_leases(self, ops: Sequence[WriteOp], *, landed: bool) -> None:
        for op in ops:
            if not isinstance(op, UpdateOne) or not isinstance(op.update, dict):
                continue
            fields = op.update.get("$set")
            if fields is None:
                continue  # creating the lease document
            owner = fields["owner"] if "owner" in fields else op.filter.get("owner")
            expires_at = fields.get("expires_at") if owner is not None else None
            self.journal.leases.append(
                LeaseWrite(self.instance_id, str(op.filter["_id"]), owner, expires_at, landed)
            )

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexSpec]) -> None:
        await self._call()
        await self.inner.ensure_indexes(collection, indexes)

    async def drop_collection(self, collection: str) -> None:
        await self._call()
        await self.inner.drop_collection(collection)

    async def list_collections(self) -> list[str]:
        await self._call()
        return await self.inner.list_collections()

    async def ping(self) -> None:
        await self._call()
        await self.inner.ping()

    async def close(self) -> None:
        """The real store is the test's to close."""


@dataclass
class Instance:
    instance_id: str
    store: InstanceStore
    stop: asyncio.Event
    task: asyncio.Task[None]


@dataclass
class Fleet:
    """Projector instances in tasks on one event store and one database."""

    events: InMemoryEventStore
    store: DocumentStore
    lease_s: float = LEASE_S
    projections: Sequence[Projection] = field(default_factory=lambda: list(all_projections()))
    journal: Journal = field(default_factory=Journal)
    instances: list[Instance] = field(default_factory=list)

    def start(self) -> Instance:
        instance_id = f"instance-{len(self.instances) + 1}"
        store = InstanceStore(self.store, instance_id, self.journal)
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_daemon(
                self.events,
                store,
                build_order_event_registry(),
                self.projections,
                event_types=subscription_event_types(self.projections),
                settings=FAST,
                stop=stop,
                refresh_s=0.05,
                instance_id=instance_id,
                lease_s=self.lease_s,
            )
        )
        instance = Instance(instance_id, store, stop, task)
        self.instances.append(instance)
        return instance

    def by_id(self, instance_id: str) -> Instance:
        return next(i for i in self.instances if i.instance_id == instance_id)

    async def kill(self, instance: Instance, calls: int) -> datetime:
        """Kill ``instance`` at its ``calls``-th call to MongoDB from now; when it died."""
        instance.store.kill_after(calls)

        async def died() -> datetime | None:
            return instance.store.killed_at

        killed_at = await wait_until(died, f"{instance.instance_id} to make {calls} calls")
        instance.task.cancel()
        return killed_at

    async def stop(self, instance: Instance) -> None:
        instance.stop.set()
        await asyncio.wait_for(instance.task, CATCH_UP_S)

    def check_alive(self) -> None:
        """A live instance's task has not ended (it would have raised)."""
        for instance in self.instances:
            if not instance.store.dead and instance.task.done() and not instance.stop.is_set():
                instance.task.result()
                raise AssertionError(f"{instance.instance_id} ended by itself")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Fleet]:
        try:
            yield self
        finally:
            for instance in self.instances:
                instance.stop.set()
            for instance in self.instances:
                if instance.store.dead:
                    with contextlib.suppress(asyncio.CancelledError):
                        await instance.task  # its leases could not be given back: ~1 s
                else:
                    await asyncio.wait_for(instance.task, CATCH_UP_S)


async def some_orders(events: InMemoryEventStore, count: int = 5) -> int:
    return await append_orders(
        events, [Order(unique("customer")) for _ in range(count)], random_day()
    )


async def test_two_then_three_instances_spread_the_projections_and_feed_them(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    async with Fleet(events, document_store).running() as fleet:
        first, second = fleet.start(), fleet.start()
        two = await wait_until(partial(spread_as, document_store, [1, 2]), "a 2 + 1 spread")
        assert {lease.owner for lease in two.values()} == {first.instance_id, second.instance_id}
        await wait_for_position(document_store, await some_orders(events), NAMES)
        await wait_until(partial(fenced_by_owners, document_store), "each owner to feed its own")

        third = fleet.start()
        three = await wait_until(partial(spread_as, document_store, [1, 1, 1]), "1 + 1 + 1")
        assert {lease.owner for lease in three.values()} == {
            first.instance_id,
            second.instance_id,
            third.instance_id,
        }
        await wait_for_position(document_store, await some_orders(events), NAMES)
        fed = await wait_until(partial(fenced_by_owners, document_store), "each owner to feed")
        assert {lease.owner for lease in fed.values()} == {
            first.instance_id,
            second.instance_id,
            third.instance_id,
        }
        fleet.check_alive()


async def test_a_stopping_instance_hands_its_leases_over_before_they_expire(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    traffic = Traffic(events, random_day())
    async with Fleet(events, document_store, lease_s=STOP_LEASE_S).running() as fleet:
        old = fleet.start()
        await wait_until(partial(spread_as, document_store, [3]), "one instance holding all")
        new = fleet.start()

        async def announced() -> bool:
            ids = {i.instance_id for i in await live_instances(document_store, utc_now())}
            return new.instance_id in ids

        await wait_until(announced, "the second instance to announce itself")
        async with traffic.flowing():
            await wait_for_position(document_store, await traffic.mark(5), NAMES)
            before = await live_leases(document_store)
            held = {name for name, lease in before.items() if lease.owner == old.instance_id}
            assert held, before
            await fleet.stop(old)
            taken = await wait_until(
                partial(owned_by, document_store, new.instance_id), "the other to take all"
            )

        for name in sorted(held):
            expiry = max(
                before[name].expires_at,
                fleet.journal.last_expiry(old.instance_id, name) or before[name].expires_at,
            )
            acquired = taken[name].acquired_at
            assert taken[name].owner == new.instance_id and acquired is not None
            assert acquired < expiry, (
                f"{name}: taken at {acquired}, the stopped owner's lease ran until {expiry}"
            )
            early = (expiry - acquired).total_seconds()
            print(f"{name}: handed over {early:.2f}s before the stopped owner's lease expired")
        assert fleet.journal.released(old.instance_id) >= held  # given back, not expired
        await wait_for_position(document_store, await head(events), NAMES)
        fed = await wait_until(partial(fenced_by_owners, document_store), "the new owner to feed")
        assert {lease.owner for lease in fed.values()} == {new.instance_id}
        assert not fleet.journal.backwards()


async def test_kill_9_of_owners_under_traffic_hands_over_and_the_read_models_equal_a_rebuild(
    document_store: DocumentStore, mongo_uri: str
) -> None:
    events = InMemoryEventStore()
    traffic = Traffic(events, random_day())
    watch = CheckpointWatch(document_store)
    fleet = Fleet(events, document_store)
    taken_s: list[float] = []  # kill -> the new owner's lease acquired
    fed_s: list[float] = []  # kill -> the new owner saved a checkpoint past the kill's
    async with fleet.running(), watch.watching():
        async with traffic.flowing():
            fleet.start()
            fleet.start()
            await wait_until(partial(spread_as, document_store, [1, 2]), "a 2 + 1 spread")
            for kill in range(KILLS):
                if kill == KILLS // 2:
                    fleet.start()  # three instances from here on
                name = random.choice(NAMES)
                # A random point under traffic: the projection got past a random append...
                mark = await traffic.mark(random.randint(1, 20))

                async def past(name: str = name, mark: int = mark) -> bool:
                    return watch.position(name) >= mark

                await wait_until(past, f"{name} to pass {mark}", CATCH_UP_S)
                lease = await wait_until(partial(_owned, document_store, name), f"{name} owned")
                victim = fleet.by_id(lease.owner or "")
                # ... and its owner dies at a random call to MongoDB from there.
                killed_at = await fleet.kill(victim, random.randint(0, 30))
                position_at_kill = watch.position(name)
                held = (await read_leases(document_store)).get(name)
                fleet.start()  # a replacement
                taken = await wait_until(
                    partial(taken_from, document_store, name, victim.instance_id),
                    f"another instance to take {name} from {victim.instance_id}",
                    CATCH_UP_S,
                )
                fleet.check_alive()
                if held is None or held.owner != victim.instance_id or taken.acquired_at is None:
                    continue  # it had given the lease away before it died: no failover
                taken_s.append((taken.acquired_at - killed_at).total_seconds())

                async def fed(
                    name: str = name, token: int = taken.token, at: int = position_at_kill
                ) -> bool:
                    """The checkpoint moved past where it was at the kill, under the new
                    owner's fence (or a later one)."""
                    seen = watch.latest.get(collection_name(name, 1))
                    fence = seen.fence if seen is not None else None
                    return fence is not None and fence >= token and watch.position(name) > at

                await wait_until(fed, f"{taken.owner} to feed {name}", CATCH_UP_S)
                fed_s.append((utc_now() - killed_at).total_seconds())
        last = await head(events)
        await wait_for_position(document_store, last, NAMES, within_s=CATCH_UP_S)
        await wait_until(partial(fenced_by_owners, document_store), "every projection fed")
        fleet.check_alive()

    times = f"{summary(taken_s)}\nfed again: {summary(fed_s)}\n"
    await asyncio.to_thread(TIMES_FILE.write_text, times)
    print(f"{KILLS} kills, {len(traffic.orders)} orders; failover (kill -> lease taken): {times}")
    assert len(taken_s) >= KILLS // 2, f"too few kills of an owner: {len(taken_s)}"
    assert watch.reads > KILLS and not watch.regressions, watch.regressions[:10]
    assert not fleet.journal.backwards()
    ours = await read_models(document_store)
    assert len(ours["order_views"]) == len(traffic.orders)
    assert differences(ours, await clean_rebuild(events, mongo_uri, last)) == []


async def _owned(store: DocumentStore, name: str) -> LeaseDocument | None:
    return (await live_leases(store)).get(name)


def saved_ids(ops: Sequence[WriteOp]) -> set[str]:
    """The checkpoints whose progress ``ops`` save (not fence stamps)."""
    return {
        str(op.filter["_id"])
        for op in ops
        if isinstance(op, UpdateOne)
        and isinstance(op.update, dict)
        and "position" in op.update.get("$set", {})
    }


class FailingOnce(InMemoryEventStore):
    """Its next subscription fails once ``fail_next`` is set (an event store outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False
        self.failed = 0

    async def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        if self.fail_next:
            self.fail_next = False
            self.failed += 1
            raise StoreUnavailable("eventstore", "connection refused")
        async for item in super().subscribe_all(after_position, event_types):
            yield item


async def test_a_save_refused_for_one_projection_moves_no_other_checkpoint_back(
    document_store: DocumentStore,
) -> None:
    events = FailingOnce()
    fleet = Fleet(
        events, document_store, lease_s=30.0, projections=[OrderViews(), CustomerSummaries()]
    )
    raced: list[int] = []

    async def another_instance_takes_customer_summaries(ops: Sequence[WriteOp]) -> None:
        """While the instance's save of both checkpoints is on its way, another instance takes
        the lease of customer_summaries and stamps its checkpoint (as it may once the lease
        expired for it: a save delayed past the lease, a paused process, clocks apart)."""
        both = {collection_name("order_views", 1), collection_name("customer_summaries", 1)}
        if raced or saved_ids(ops) != both:
            return
        lease = (await read_leases(document_store))["customer_summaries"]
        token = lease.token + 1
        await document_store.bulk_write(
            LEASES,
            [
                UpdateOne(
                    {"_id": "customer_summaries"}, {"$set": {"owner": "other", "token": token}}
                )
            ],
        )
        assert await stamp_fence(document_store, collection_name("customer_summaries", 1), token)
        events.fail_next = True  # and the next session meets an outage
        raced.append(token)

    async with fleet.running():
        instance = fleet.start()
        await wait_for_position(document_store, await some_orders(events), ["order_views"])
        instance.store.before_checkpoint_write = another_instance_takes_customer_summaries
        await wait_for_position(document_store, await some_orders(events), ["order_views"])

        async def recovered() -> bool:
            return bool(raced) and events.failed == 1

        await wait_until(recovered, "the race and the outage")
        await wait_for_position(document_store, await some_orders(events), ["order_views"])
        fleet.check_alive()
    views = [
        w.position
        for w in fleet.journal.checkpoints
        if w.landed
        and w.position is not None
        and w.checkpoint_id == collection_name("order_views", 1)
    ]
    assert views == sorted(views), f"order_views checkpoint saves landed at {views}"
