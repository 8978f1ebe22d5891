"""Helpers for the failover tests of projector leases (``test_lease_failover.py`` in-process,
``test_lease_processes.py`` with real processes): who owns what, a watch on every checkpoint,
steady traffic, and the read models compared with a clean rebuild document by document."""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from projector.catalog import subscription_event_types
from projector.leases import LeaseDocument, read_leases
from projector.projections import all_projections
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.read_models import (
    CHECKPOINTS,
    FENCE_FIELD,
    PROJECTION_NAMES,
    collection_name,
    resolve_active,
)
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import Document, DocumentStore
from shared.ports.event_store import EventStore
from tests.conftest import unique
from tests.projector.support import Order, append_orders, running_daemon, wait_for_position
from tests.waiting import wait_until

NAMES = PROJECTION_NAMES
CATCH_UP_S = 120.0  # bound of the waits for a catch-up or a failover: never reached when right
# The traffic's pace: one order (3 to 10 events) per step. A load model, not a wait.
PACE_S = 0.03

ReadModels = dict[str, dict[Any, Document]]


async def live_leases(store: DocumentStore) -> dict[str, LeaseDocument]:
    """The leases that are owned and not expired now, by projection."""
    now = utc_now()
    return {name: lease for name, lease in (await read_leases(store)).items() if lease.live(now)}


def shares(leases: dict[str, LeaseDocument]) -> list[int]:
    """How many projections each owner holds, smallest first."""
    return sorted(Counter(lease.owner for lease in leases.values()).values())


async def spread_as(store: DocumentStore, expected: list[int]) -> dict[str, LeaseDocument] | None:
    """The live leases when every projection is owned and the owners hold ``expected``."""
    leases = await live_leases(store)
    return leases if set(leases) == set(NAMES) and shares(leases) == expected else None


async def taken_from(store: DocumentStore, name: str, instance_id: str) -> LeaseDocument | None:
    """The live lease of ``name`` once an instance other than ``instance_id`` holds it."""
    lease = (await live_leases(store)).get(name)
    return lease if lease is not None and lease.owner != instance_id else None


async def fenced_by_owners(store: DocumentStore) -> dict[str, LeaseDocument] | None:
    """The live leases when every projection is owned and its checkpoint carries its lease's
    token (the owner stamped it: it feeds it)."""
    leases = await live_leases(store)
    if set(leases) != set(NAMES):
        return None
    for name, lease in leases.items():
        document = await store.find_one(CHECKPOINTS, {"_id": collection_name(name, 1)})
        if document is None or document.get(FENCE_FIELD) != lease.token:
            return None
    return leases


async def owned_by(store: DocumentStore, owner: str) -> dict[str, LeaseDocument] | None:
    """The live leases when ``owner`` holds every one."""
    leases = await live_leases(store)
    held = set(leases) == set(NAMES) and {lease.owner for lease in leases.values()} == {owner}
    return leases if held else None


@dataclass(frozen=True, slots=True)
class Seen:
    position: int | None
    fence: int | None


@contextlib.asynccontextmanager
async def _polling(poll: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Run ``poll`` over and over in a task while the block runs (one read after another)."""
    stop = asyncio.Event()

    async def run() -> None:
        while not stop.is_set():
            await poll()

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        stop.set()
        await task


@dataclass
class CheckpointWatch:
    """Reads every checkpoint document over and over, one read after the other (so each read
    sees a state at least as new as the one before), and notes every position or fence that
    went backwards."""

    store: DocumentStore
    latest: dict[str, Seen] = field(default_factory=dict)
    regressions: list[str] = field(default_factory=list)
    reads: int = 0

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[CheckpointWatch]:
        async with _polling(self._poll):
            yield self

    async def _poll(self) -> None:
        self.see(await self.store.find(CHECKPOINTS, {}))

    def see(self, documents: Sequence[Document]) -> None:
        self.reads += 1
        for document in documents:
            key = str(document["_id"])
            now = Seen(_int(document.get("position")), _int(document.get(FENCE_FIELD)))
            before = self.latest.get(key)
            if before is not None:
                for what, old, new in (
                    ("position", before.position, now.position),
                    ("fence", before.fence, now.fence),
                ):
                    if old is not None and (new is None or new < old):
                        self.regressions.append(f"{key}: {what} went from {old} back to {new}")
            self.latest[key] = now

    def position(self, projection: str, version: int = 1) -> int:
        seen = self.latest.get(collection_name(projection, version))
        return (seen.position or 0) if seen is not None else 0


@dataclass
class LeaseWatch:
    """Reads every lease document over and over, keeping the latest expiry each owner wrote on
    each projection's lease (what a takeover must wait for, unless the owner gave it back)."""

    store: DocumentStore
    expiries: dict[tuple[str, str], datetime] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[LeaseWatch]:
        async with _polling(self._poll):
            yield self

    async def _poll(self) -> None:
        for name, lease in (await read_leases(self.store)).items():
            if lease.owner is not None:
                key = (lease.owner, name)
                self.expiries[key] = max(lease.expires_at, self.expiries.get(key, lease.expires_at))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class Traffic:
    """Orders of a few customers appended one after the other at a steady pace until stopped;
    ``positions`` holds the position of each append's last event."""

    events: EventStore
    day: datetime
    customers: list[str] = field(default_factory=lambda: [unique("customer") for _ in range(8)])
    orders: list[Order] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def flowing(self) -> AsyncIterator[Traffic]:
        stop = asyncio.Event()
        task = asyncio.create_task(self._run(stop))
        try:
            yield self
        finally:
            stop.set()
            await task

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            order = Order(
                random.choice(self.customers),
                random.choice(["shipped", "shipped", "paid", "cancelled", "draft"]),
                extra_items=random.randint(0, 2),
            )
            self.orders.append(order)
            per_append = random.randint(1, 4)
            self.positions.append(
                await append_orders(self.events, [order], self.day, per_append=per_append)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PACE_S)

    async def mark(self, appends: int) -> int:
        """The position of the ``appends``-th append from now, once it is made."""
        wanted = len(self.positions) + appends

        async def made() -> int | None:
            return self.positions[wanted - 1] if len(self.positions) >= wanted else None

        return await wait_until(made, f"{appends} more appends of the traffic", CATCH_UP_S)


async def head(events: EventStore) -> int:
    return await events.head_position(subscription_event_types(list(all_projections())))


async def read_models(store: DocumentStore) -> ReadModels:
    """Every document of the active version of every projection, by projection and id."""
    models: ReadModels = {}
    for name in NAMES:
        active = await resolve_active(store, name)
        models[name] = {d["_id"]: d for d in await store.find(active.collection, {})}
    return models


async def clean_rebuild(events: EventStore, mongo_uri: str, position: int) -> ReadModels:
    """The read models one daemon builds from scratch into a fresh database, up to
    ``position``, over the same events."""
    clean = MotorDocumentStore(mongo_uri, unique("clean").replace("-", "_")[:60])
    try:
        async with running_daemon(events, clean):
            await wait_for_position(clean, position, NAMES, within_s=CATCH_UP_S)
        return await read_models(clean)
    finally:
        for collection in await clean.list_collections():
            await clean.drop_collection(collection)
        await clean.close()


def differences(ours: ReadModels, clean: ReadModels) -> list[str]:
    """Every document that is not the same in ``ours`` and ``clean`` (nothing left out: each
    field of a read document derives from the events), at most a few per projection."""
    found: list[str] = []
    for name in NAMES:
        mine, theirs = ours.get(name, {}), clean.get(name, {})
        different = sorted(
            (i for i in mine.keys() | theirs.keys() if mine.get(i) != theirs.get(i)), key=str
        )
        found += [f"{name} {i}: {mine.get(i)!r} != clean {theirs.get(i)!r}" for i in different[:5]]
        if len(different) > 5:
            found.append(f"{name}: {len(different) - 5} more documents differ")
    return found


def summary(seconds: Sequence[float]) -> str:
    """``p50=.. max=.. n=..`` of failover times in seconds."""
    if not seconds:
        return "p50=- max=- n=0"
    return f"p50={statistics.median(seconds):.2f}s max={max(seconds):.2f}s n={len(seconds)}"
