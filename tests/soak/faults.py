"""Faults injected while the soak traffic runs. Every wait is on a condition, never a sleep:

- ``kill_owner``: ``kill -9`` of the projector instance holding the lease of a random projection,
  at a random point once the instances have applied something since the last fault (so the kill
  lands while they work); a replacement (a new instance id) is started at once, and every lease
  the dead instance held is timed (``failovers``) until another instance acquired it (the kill
  to the lease's new ``acquired_at``; its expiry comes first) and until the projection's
  checkpoint was saved under another token (fed again). With one instance this is the old
  "kill the projector and restart it";
- ``kill_projector_during_catch_up``: every instance stopped (SIGTERM) while the traffic appends
  at least ``catch_up_events`` events, started again, and the owner of the first read model
  written during the catch-up (a document past its checkpoint) ``kill -9``ed as soon as that
  write lands in MongoDB, then replaced;
- ``rolling_restart``: the instances replaced one by one: SIGTERM, wait for the exit (it must own
  no live lease then; one it owns expired, not given back, is counted in ``lapsed``), start the
  new one, wait until it holds a lease (is live, when there are more instances than
  projections); each lease the stopped instance held is timed until another instance acquired
  it and fed it again (``handovers``);
- ``restart_store``: ``kill -9`` of embedded-eventstore, SIGTERM or SIGKILL of embedded-mongo,
  restarted on the same file and port.

The projector instances are also watched: one that exits on its own is restarted and the exit is
reported (under ``make run`` honcho would have stopped the whole stack).

Each fault names the phase of the run (``Record.phase``) while it acts, ``after <fault>`` from
its end until the instances have caught up with what was acknowledged by then, and ``steady``
from there to the next fault: the share of stale reads with a token in each phase shows what a
fault costs against the usual level. A rolling restart starts once the instances have caught
up, so its phase counts only what the restart itself costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from projector.leases import LeaseDocument, live_instances, read_leases
from shared.contract.read_models import (
    CHECKPOINTS,
    FENCE_FIELD,
    POSITION_FIELD,
    PROJECTION_NAMES,
    as_utc,
    resolve_active,
)
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from tests.projector.support import checkpoint
from tests.soak.record import STEADY, Record
from tests.soak.stack import Managed, SoakStack
from tests.waiting import wait_until

POLL_S = 0.005  # polling MongoDB for the first catch-up write: it must be seen at once
LEASE_POLL_S = 0.05  # polling the leases: a lease's acquired_at says when, not the poll
RECOVERY_POLL_S = 0.1  # polling the checkpoints for the end of a fault's aftermath
PROGRESS_TIMEOUT_S = 120.0
RANDOM_POINT_S = 1.5  # a kill lands up to this long after the projector was seen working
CATCH_UP_TIMEOUT_S = 300.0
HANDOVER_TIMEOUT_S = 120.0  # bound of a wait for a lease's next owner; never reached when right


async def checkpoints(documents: DocumentStore) -> dict[str, int]:
    """The active version's checkpoint position per projection (-1: none or unreadable)."""
    positions = {}
    for name in PROJECTION_NAMES:
        try:
            record = await checkpoint(documents, name)
        except StoreUnavailable:
            record = None
        positions[name] = record.position if record else -1
    return positions


async def written_past(documents: DocumentStore, positions: dict[str, int]) -> str | None:
    """A read model that has a document or checkpoint past ``positions``: the name, or None."""
    for name in PROJECTION_NAMES:
        try:
            active = await resolve_active(documents, name)
            ahead = await documents.find(
                active.collection, {POSITION_FIELD: {"$gt": positions[name]}}, limit=1
            )
        except StoreUnavailable:
            continue
        if ahead or active.position > positions[name]:
            return name
    return None


async def leases(documents: DocumentStore) -> dict[str, LeaseDocument] | None:
    """The lease documents by projection; None while MongoDB is unavailable."""
    try:
        return await read_leases(documents)
    except StoreUnavailable:
        return None


@dataclass
class Takeovers:
    """Per lease that changed hands: seconds from its owner's end (kill -9, SIGTERM) until
    another instance acquired it, and until the projection was fed again."""

    acquired: list[float] = field(default_factory=list)
    fed: list[float] = field(default_factory=list)


def owned_by(found: dict[str, LeaseDocument], instance_id: str) -> dict[str, LeaseDocument]:
    """The leases whose document names ``instance_id`` as owner (expired or not)."""
    return {name: lease for name, lease in sorted(found.items()) if lease.owner == instance_id}


def left_behind(found: dict[str, LeaseDocument], instance_id: str) -> tuple[list[str], list[str]]:
    """The leases a stopped instance still owns: (live ones, expired ones), as ``name by id``."""
    now = utc_now()
    owned = owned_by(found, instance_id)
    return (
        [f"{name} by {instance_id}" for name, lease in owned.items() if lease.live(now)],
        [f"{name} by {instance_id}" for name, lease in owned.items() if not lease.live(now)],
    )


async def saved_under_another_token(
    documents: DocumentStore, projection: str, token: int, taken_at: datetime
) -> datetime | None:
    """When the active checkpoint of ``projection`` was saved, if that was after ``taken_at``
    (when the next owner acquired the lease; it stamps its token after that) and the checkpoint
    is fenced by another token than ``token`` (the former owner's): the next owner feeds it. A
    fence stamp sets no ``updated_at``: the former owner's last save, older, does not count."""
    try:
        active = await resolve_active(documents, projection)
        found = await documents.find(CHECKPOINTS, {"_id": active.collection}, limit=1)
    except StoreUnavailable:
        return None
    if not found or found[0].get(FENCE_FIELD) in (None, token):
        return None
    saved_at = as_utc(found[0].get("updated_at"))
    return saved_at if saved_at is not None and saved_at > taken_at else None


@dataclass
class Faults:
    stack: SoakStack
    documents: DocumentStore
    record: Record
    injected: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)
    catch_up_events: list[int] = field(default_factory=list)  # events behind, per catch-up kill
    failovers: Takeovers = field(default_factory=Takeovers)  # after an owner's kill -9
    handovers: Takeovers = field(default_factory=Takeovers)  # after an owner's SIGTERM
    lapsed: list[str] = field(default_factory=list)  # leases left to expire by a SIGTERM'd owner
    rng: random.Random = field(default_factory=random.Random)
    holding: set[str] = field(default_factory=set)  # instances stopped on purpose: not revived
    recovery: asyncio.Task[None] | None = None  # ends the aftermath of the last fault

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """``name`` while the block runs, then ``after <name>`` until caught up (see above)."""
        self.record.enter(name)
        try:
            yield
        finally:
            aftermath = f"after {name}"
            self.record.enter(aftermath)
            self.stop_watching()
            self.recovery = asyncio.create_task(self._steady_when_caught_up(aftermath))

    async def _steady_when_caught_up(self, aftermath: str) -> None:
        target = self.record.last_position

        async def caught_up() -> bool:
            return min((await checkpoints(self.documents)).values()) >= target

        with contextlib.suppress(AssertionError):  # still not caught up: the aftermath goes on
            await wait_until(
                caught_up, "the end of an aftermath", CATCH_UP_TIMEOUT_S, RECOVERY_POLL_S
            )
            if self.record.phase == aftermath:
                self.record.enter(STEADY)

    def stop_watching(self) -> None:
        if self.recovery is not None:
            self.recovery.cancel()
            self.recovery = None

    async def settle(self) -> None:
        """Until the instances have caught up with everything acknowledged so far."""
        target = self.record.last_position

        async def caught_up() -> bool:
            return min((await checkpoints(self.documents)).values()) >= target

        await self.wait(f"the projector to reach position {target}", CATCH_UP_TIMEOUT_S, caught_up)

    async def wait(
        self,
        condition_name: str,
        timeout_s: float,
        probe: Callable[[], Awaitable[bool]],
        poll_s: float = POLL_S,
    ) -> bool:
        """Poll ``probe`` (an async callable) until truthy; restart an instance that died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.revive_projectors()
            if await probe():
                return True
            await asyncio.sleep(poll_s)
        self.findings.append(f"timed out after {timeout_s:.0f} s waiting for {condition_name}")
        return False

    def revive_projectors(self) -> None:
        for managed in self.stack.projectors:
            if managed.name in self.holding or managed.process is None:
                continue
            if managed.reap() is not None:
                # It exited without being told to: reported through stack.unexpected_exits().
                managed.spawn(self.stack.env)
                self.injected["projector exited by itself (restarted)"] += 1

    async def read_leases(self) -> dict[str, LeaseDocument]:
        """The lease documents, waiting while MongoDB is unavailable."""
        found: list[dict[str, LeaseDocument]] = []

        async def readable() -> bool:
            current = await leases(self.documents)
            if current is not None:
                found.append(current)
            return current is not None

        await self.wait("the leases to be readable", PROGRESS_TIMEOUT_S, readable, LEASE_POLL_S)
        return found[-1] if found else {}

    async def wait_for_progress(self) -> None:
        """Until a projection's checkpoint moved (the instances are past their start-up)."""
        before = await checkpoints(self.documents)

        async def progressed() -> bool:
            now = await checkpoints(self.documents)
            return any(now[name] > before[name] for name in PROJECTION_NAMES)

        await self.wait("the projector to save a checkpoint", PROGRESS_TIMEOUT_S, progressed)

    async def owner_of(self, projection: str) -> Managed | None:
        """The running instance holding ``projection``'s lease (waiting until one does)."""
        found: list[Managed] = []

        async def owned() -> bool:
            lease = ((await leases(self.documents)) or {}).get(projection)
            managed = None
            if lease is not None and lease.live(utc_now()):
                managed = self.stack.running_instance(lease.owner)
            if managed is not None:
                found.append(managed)
            return managed is not None

        await self.wait(f"a live owner of {projection}", HANDOVER_TIMEOUT_S, owned, LEASE_POLL_S)
        return found[-1] if found else None

    async def taken_over(
        self, former: str, held: dict[str, LeaseDocument], since: datetime, into: Takeovers
    ) -> None:
        """Wait until another instance acquired each lease of ``held`` (``former``'s until
        ``since``) and fed its projection (a checkpoint saved under another token); record the
        seconds from ``since`` to each new ``acquired_at`` and to the first such save."""
        pending, unfed = set(held), dict[str, datetime]()

        async def acquired() -> bool:
            current = await leases(self.documents) or {}
            for name in sorted(pending):
                lease = current.get(name)
                if lease is None or lease.owner in (None, former) or lease.acquired_at is None:
                    continue
                pending.discard(name)
                unfed[name] = max(lease.acquired_at, since)
                if lease.acquired_at >= since:  # not taken before: a give-back just before
                    into.acquired.append((lease.acquired_at - since).total_seconds())
            for name, taken_at in sorted(unfed.items()):
                token = held[name].token
                saved_at = await saved_under_another_token(self.documents, name, token, taken_at)
                if saved_at is not None:
                    del unfed[name]
                    into.fed.append((saved_at - since).total_seconds())
            return not pending and not unfed

        await self.wait(
            f"other instances to take and feed {sorted(held)} after {former}",
            HANDOVER_TIMEOUT_S,
            acquired,
            LEASE_POLL_S,
        )

    async def kill_owner(self) -> None:
        """kill -9 of a random projection's lease owner at a random point after the instances
        saved a checkpoint, a replacement started at once; its leases timed to their takeover."""
        await self.wait_for_progress()
        await asyncio.sleep(self.rng.uniform(0, RANDOM_POINT_S))  # a random point after that
        victim = await self.owner_of(self.rng.choice(PROJECTION_NAMES))
        if victim is None:
            return
        with self.phase("owner kill"):
            await self._kill_and_replace(victim)
            self.injected["projector kill -9"] += 1

    async def _kill_and_replace(self, victim: Managed) -> None:
        former = victim.instance_id
        killed_at = utc_now()
        await self.stack.kill_and_restart(victim.name, signal.SIGKILL)
        # A dead process holds what its documents say it holds.
        held = owned_by(await self.read_leases(), former)
        if not held:
            self.injected["projector kill -9 of an instance that held no lease"] += 1
        await self.taken_over(former, held, killed_at, self.failovers)

    async def kill_projector_during_catch_up(self, events: int) -> None:
        with self.phase("catch-up kill"):
            await self._kill_during_catch_up(events)

    async def _kill_during_catch_up(self, events: int) -> None:
        self.revive_projectors()
        instances = self.stack.projectors
        self.holding = {managed.name for managed in instances}
        await asyncio.gather(
            *(asyncio.to_thread(managed.signal, signal.SIGTERM) for managed in instances)
        )
        stopped_at = await checkpoints(self.documents)
        acknowledged = self.record.events_acknowledged

        async def enough() -> bool:
            return self.record.events_acknowledged - acknowledged >= events

        await self.wait(
            f"{events} events while the projector is stopped", CATCH_UP_TIMEOUT_S, enough
        )
        self.catch_up_events.append(self.record.events_acknowledged - acknowledged)
        for managed in instances:
            managed.spawn(self.stack.env)
        self.holding = set()
        written: list[str] = []

        async def first_write() -> bool:
            name = await written_past(self.documents, stopped_at)
            if name is not None:
                written.append(name)
            return name is not None

        await self.wait("the first write of the catch-up", CATCH_UP_TIMEOUT_S, first_write)
        lease = ((await leases(self.documents)) or {}).get(written[-1]) if written else None
        writer = self.stack.running_instance(lease.owner if lease else None)
        if writer is not None:
            await self._kill_and_replace(writer)
        else:  # its lease moved on already: every instance goes, the writer with them
            for managed in instances:
                await self.stack.kill_and_restart(managed.name, signal.SIGKILL)
        self.injected["projector kill -9 at its first catch-up write"] += 1

    async def rolling_restart(self) -> None:
        """Once caught up, every instance replaced in turn: SIGTERM, exit, a new one, until it
        holds a lease."""
        await self.settle()
        with self.phase("rolling restart"):
            for managed in self.stack.projectors:
                await self._replace(managed)
            self.injected["rolling restart"] += 1

    async def _replace(self, managed: Managed) -> None:
        self.revive_projectors()
        former = managed.instance_id
        held = owned_by(await self.read_leases(), former)
        self.holding.add(managed.name)
        stopped_at = utc_now()
        code = await asyncio.to_thread(managed.signal, signal.SIGTERM)
        live, lapsed = left_behind(await self.read_leases(), former)
        if live:
            self.findings.append(f"{former} exited {code} on SIGTERM still owning {live}")
        self.lapsed += lapsed
        managed.spawn(self.stack.env)
        self.holding.discard(managed.name)
        self.injected["projector SIGTERM (rolling restart)"] += 1
        await self.taken_over(former, held, stopped_at, self.handovers)
        await self.wait(
            f"{managed.instance_id} to hold a lease (or be live)",
            HANDOVER_TIMEOUT_S,
            lambda: self._serving(managed.instance_id),
            LEASE_POLL_S,
        )

    async def _serving(self, instance_id: str) -> bool:
        """Whether ``instance_id`` holds a lease, or is live while there are more instances
        than projections (then some hold none)."""
        try:
            if len(self.stack.projectors) > len(PROJECTION_NAMES):
                live = await live_instances(self.documents, utc_now())
                return instance_id in {instance.instance_id for instance in live}
            current = await read_leases(self.documents)
        except StoreUnavailable:
            return False
        now = utc_now()
        return any(lease.owner == instance_id and lease.live(now) for lease in current.values())

    async def restart_store(self, name: str, signum: int) -> None:
        """Stop a store with ``signum`` and start it on the same file and port."""
        with self.phase(f"{name} restart"):
            await self.stack.kill_and_restart(name, signum)
            self.injected[f"{name} {signal.Signals(signum).name}"] += 1


def schedule(
    projector_kills: int,
    catch_up_kills: int = 1,
    rolling_restarts: int = 0,
    store_restarts: bool = True,
) -> list[str]:
    """The faults of a run, in order: catch-up kills early and spread out, rolling restarts and
    store faults (unless ``store_restarts`` is off) between the owner kills at random points."""
    special = ["eventstore", "mongo-term", "mongo-kill"] if store_restarts else []
    for slot in range(catch_up_kills):
        special.insert(min(slot * 2, len(special)), "catch-up")
    for slot in range(rolling_restarts):
        special.insert(min(2 + slot * 3, len(special)), "rolling")
    plan: list[str] = []
    per_gap = max(projector_kills // (len(special) + 1), 1)
    kills_left = projector_kills
    for fault in ["", *special]:
        if fault:
            plan.append(fault)
        take = min(per_gap, kills_left)
        plan += ["projector"] * take
        kills_left -= take
    return plan + ["projector"] * kills_left


async def inject(faults: Faults, plan: list[str], seconds: float, catch_up_events: int) -> None:
    """Run ``plan`` spread over about ``seconds`` (pacing only: each fault waits on its own
    condition, so a slow machine stretches the run instead of weakening it)."""
    started = time.monotonic()
    for done, fault in enumerate(plan):
        # Pacing between faults, the first after a slot of steady traffic; the faults themselves
        # wait on conditions, not on time.
        slot = started + seconds * (done + 1) / (len(plan) + 1)
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        if fault == "projector":
            await faults.kill_owner()
        elif fault == "catch-up":
            await faults.kill_projector_during_catch_up(catch_up_events)
        elif fault == "rolling":
            await faults.rolling_restart()
        elif fault == "eventstore":
            await faults.restart_store("eventstore", signal.SIGKILL)
        elif fault == "mongo-term":
            await faults.restart_store("mongo", signal.SIGTERM)
        elif fault == "mongo-kill":
            await faults.restart_store("mongo", signal.SIGKILL)
        else:
            raise ValueError(f"unknown fault {fault!r}")
