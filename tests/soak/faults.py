"""Faults injected while the soak traffic runs. Every wait is on a condition, never a sleep:

- ``kill_projector``: ``kill -9`` of the projector once it has applied something since it was
  (re)started (so the kill lands while it works), then a restart;
- ``kill_projector_during_catch_up``: the projector stopped (SIGTERM) while the traffic appends
  at least ``catch_up_events`` events, started again, and ``kill -9``ed as soon as its first
  write of the catch-up lands in MongoDB (a read-model document past its checkpoint), then
  restarted;
- ``restart_store``: ``kill -9`` of embedded-eventstore, SIGTERM or SIGKILL of embedded-mongo,
  restarted on the same file and port.

The projector is also watched: if it exits on its own it is restarted and the exit is reported
(under ``make run`` honcho would have stopped the whole stack).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.contract.read_models import POSITION_FIELD, PROJECTION_NAMES, resolve_active
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from tests.projector.support import checkpoint
from tests.soak.record import Record
from tests.soak.stack import SoakStack

POLL_S = 0.005  # polling MongoDB for the first catch-up write: it must be seen at once
PROGRESS_TIMEOUT_S = 120.0
RANDOM_POINT_S = 1.5  # a kill lands up to this long after the projector was seen working
CATCH_UP_TIMEOUT_S = 300.0


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


@dataclass
class Faults:
    stack: SoakStack
    documents: DocumentStore
    record: Record
    injected: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)
    catch_up_events: list[int] = field(default_factory=list)  # events behind, per catch-up kill
    rng: random.Random = field(default_factory=random.Random)
    holding: bool = False  # the projector is stopped on purpose: do not revive it

    async def wait(
        self, condition_name: str, timeout_s: float, probe: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Poll ``probe`` (an async callable) until truthy; restart a projector that died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.revive_projector()
            if await probe():
                return True
            await asyncio.sleep(POLL_S)
        self.findings.append(f"timed out after {timeout_s:.0f} s waiting for {condition_name}")
        return False

    def revive_projector(self) -> None:
        projector = self.stack["projector"]
        if not self.holding and projector.process is not None and projector.reap() is not None:
            # It exited without being told to: reported through stack.unexpected_exits().
            projector.spawn(self.stack.env)
            self.injected["projector exited by itself (restarted)"] += 1

    async def kill_projector(self) -> None:
        """kill -9 at a random point after the (re)started projector saved a checkpoint (so it
        is past its start-up and working), then restart it."""
        before = await checkpoints(self.documents)

        async def progressed() -> bool:
            now = await checkpoints(self.documents)
            return any(now[name] > before[name] for name in PROJECTION_NAMES)

        await self.wait("the projector to save a checkpoint", PROGRESS_TIMEOUT_S, progressed)
        await asyncio.sleep(self.rng.uniform(0, RANDOM_POINT_S))  # a random point after that
        self.revive_projector()
        await self.stack.kill_and_restart("projector", signal.SIGKILL)
        self.injected["projector kill -9"] += 1

    async def kill_projector_during_catch_up(self, events: int) -> None:
        projector = self.stack["projector"]
        self.revive_projector()
        self.holding = True
        await asyncio.to_thread(projector.signal, signal.SIGTERM)
        stopped_at = await checkpoints(self.documents)
        acknowledged = self.record.events_acknowledged

        async def enough() -> bool:
            return self.record.events_acknowledged - acknowledged >= events

        await self.wait(
            f"{events} events while the projector is stopped", CATCH_UP_TIMEOUT_S, enough
        )
        self.catch_up_events.append(self.record.events_acknowledged - acknowledged)
        projector.spawn(self.stack.env)
        self.holding = False

        async def first_write() -> bool:
            return await written_past(self.documents, stopped_at) is not None

        await self.wait("the first write of the catch-up", CATCH_UP_TIMEOUT_S, first_write)
        await self.stack.kill_and_restart("projector", signal.SIGKILL)
        self.injected["projector kill -9 at its first catch-up write"] += 1

    async def restart_store(self, name: str, signum: int) -> None:
        """Stop a store with ``signum`` and start it on the same file and port."""
        await self.stack.kill_and_restart(name, signum)
        self.injected[f"{name} {signal.Signals(signum).name}"] += 1


def schedule(projector_kills: int, catch_up_kills: int = 1) -> list[str]:
    """The faults of a run, in order: catch-up kills early and spread out, store faults between
    the projector kills at random points."""
    special = ["eventstore", "mongo-term", "mongo-kill"]
    for slot in range(catch_up_kills):
        special.insert(min(slot * 2, len(special)), "catch-up")
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
        # Pacing between faults; the faults themselves wait on conditions, not on time.
        slot = started + seconds * done / len(plan)
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        if fault == "projector":
            await faults.kill_projector()
        elif fault == "catch-up":
            await faults.kill_projector_during_catch_up(catch_up_events)
        elif fault == "eventstore":
            await faults.restart_store("eventstore", signal.SIGKILL)
        elif fault == "mongo-term":
            await faults.restart_store("mongo", signal.SIGTERM)
        elif fault == "mongo-kill":
            await faults.restart_store("mongo", signal.SIGKILL)
