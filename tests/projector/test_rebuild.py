"""Zero-downtime rebuild: next to the running daemon, interruptible, resumable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from projector.catalog import subscription_event_types
from projector.projections import all_projections
from projector.rebuild import RebuildOptions, RebuildOutcome, rebuild_projection
from projector.status import projection_statuses
from projector.version_registry import RebuildInProgress, claim_rebuild, read_entry
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import collection_name, resolve_active
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from tests.conftest import unique
from tests.projector.support import (
    FAST,
    Order,
    append_orders,
    checkpoint,
    random_day,
    running_daemon,
    wait_for_position,
)
from tests.waiting import wait_until

PACE_S = 0.02
MAX_WRITTEN = 40


@pytest.fixture
def eventstore_uri(fresh_eventstore_uri: str) -> str:
    """Rebuilds read the log from zero: give each test a log of its own."""
    return fresh_eventstore_uri


OPTIONS = RebuildOptions(runner=FAST, retire_grace_s=0.5, switch_wait_s=2.0, show_progress=False)


async def rebuild(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    name: str = "order_views",
    stop: asyncio.Event | None = None,
    options: RebuildOptions = OPTIONS,
    clock: Callable[[], datetime] | None = None,
) -> RebuildOutcome:
    projections = all_projections()
    projection = next(p for p in projections if p.name == name)
    extra = {"clock": clock} if clock else {}
    return await rebuild_projection(
        event_store,
        document_store,
        build_order_event_registry(),
        projection,
        event_types=subscription_event_types(projections),
        options=options,
        stop=stop or asyncio.Event(),
        **extra,
    )


async def test_rebuild_while_events_keep_arriving_never_shows_a_partial_model(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    day = random_day()
    seeded = [Order(customer, "cancelled") for _ in range(40)]
    seeded_at = await append_orders(event_store, seeded, day)
    created: dict[str, int] = {}  # order id -> position of its OrderCreated
    for order in seeded:
        created[str(order.order_id)] = (await event_store.read_stream(order.stream))[0].position
    writing = asyncio.Event()
    writing.set()
    violations: list[str] = []
    reads = 0
    versions_seen: set[int] = set()

    # Writer and reader pace themselves (a steady load, not a flood that starves the daemon
    # on two shared cores); the sleeps pace work, nothing waits on them.
    async def writer() -> None:
        while writing.is_set() and len(created) < len(seeded) + MAX_WRITTEN:
            order = Order(customer, "shipped")
            await append_orders(event_store, [order], day)
            stored = await event_store.read_stream(order.stream)
            created[str(order.order_id)] = stored[0].position
            await asyncio.sleep(PACE_S)

    async def reader() -> None:
        nonlocal reads
        while writing.is_set():
            active = await resolve_active(document_store, "order_views")
            docs = await document_store.find(active.collection, {"customer_id": customer})
            visible = {d["_id"] for d in docs}
            expected = {oid for oid, pos in list(created.items()) if pos <= active.position}
            if active.position < seeded_at:
                violations.append(f"v{active.version} at {active.position} < seeded {seeded_at}")
            if missing := expected - visible:
                violations.append(f"v{active.version}: {len(missing)} orders missing")
            versions_seen.add(active.version)
            reads += 1
            await asyncio.sleep(PACE_S)

    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, seeded_at)
        tasks = [asyncio.create_task(writer()), asyncio.create_task(reader())]
        try:
            outcome = await rebuild(event_store, document_store)
            switched_at = reads
            await wait_until(
                lambda: _ready(reads > switched_at + 10), "the reader to read after the switch"
            )
        finally:
            writing.clear()
            await asyncio.gather(*tasks)
        last = max(created.values())
        await wait_for_position(document_store, last, ["order_views"])

    assert outcome.switched and (outcome.previous_version, outcome.version) == (1, 2)
    assert violations == []
    assert versions_seen == {1, 2}
    active = await resolve_active(document_store, "order_views")
    assert active.version == 2
    docs = await document_store.find(active.collection, {"customer_id": customer})
    assert {d["_id"] for d in docs} == set(created)
    assert all(d["status"] in {"cancelled", "shipped"} for d in docs)
    entry = await read_entry(document_store, "order_views")
    assert entry.rebuilding_version is None
    collections = await document_store.list_collections()
    assert "order_views_v1" not in collections
    assert await checkpoint(document_store, "order_views", 1) is None


async def _ready(condition: bool) -> bool:
    return condition


async def test_an_interrupted_rebuild_is_unused_and_resumes(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    orders = [Order(customer, "paid") for _ in range(40)]
    last = await append_orders(event_store, orders, random_day(), per_append=3)
    total = sum(len(order.events()) for order in orders)
    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, last)

    stop = asyncio.Event()
    slow = RebuildOptions(
        runner=FAST.__class__(batch_size=20, batch_wait_s=0.01, idle_s=0.05),
        show_progress=False,
    )
    task = asyncio.create_task(rebuild(event_store, document_store, stop=stop, options=slow))

    async def started() -> bool:
        record = await checkpoint(document_store, "order_views", 2)
        return record is not None and record.position > 0

    await wait_until(started, "the rebuild to make progress")
    stop.set()
    interrupted = await asyncio.wait_for(task, 30)
    assert not interrupted.switched
    entry = await read_entry(document_store, "order_views")
    assert (entry.active_version, entry.rebuilding_version, entry.rebuild_owner) == (1, 2, None)
    assert (await resolve_active(document_store, "order_views")).version == 1
    statuses = await projection_statuses(document_store, event_store)
    views = next(s for s in statuses if s.name == "order_views")
    assert views.rebuilding is not None and views.rebuilding.version == 2
    assert not views.rebuilding.running and views.rebuilding.state == "rebuilding"

    resumed = await rebuild(event_store, document_store)
    assert resumed.switched and resumed.resumed and resumed.version == 2
    assert interrupted.events > 0
    assert interrupted.events + resumed.events == total  # it resumed; it did not start over
    v2 = await document_store.find(collection_name("order_views", 2), {"customer_id": customer})
    assert len(v2) == len(orders)


async def test_two_rebuilds_of_one_projection_do_not_run_at_once(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    version, resumed = await claim_rebuild(document_store, "daily_sales", "someone-else", utc_now())
    assert (version, resumed) == (2, False)
    with pytest.raises(RebuildInProgress):
        await rebuild(event_store, document_store, "daily_sales")


async def test_rebuild_status_and_progress_are_reported(
    event_store: EsdbEventStore, document_store: DocumentStore
) -> None:
    customer = unique("customer")
    last = await append_orders(event_store, [Order(customer) for _ in range(10)], random_day())
    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, last)
    progress_lines: list[Any] = []

    class Sink:
        def write(self, text: str) -> None:
            progress_lines.append(text)

        def flush(self) -> None:
            pass

    options = RebuildOptions(runner=FAST, retire_grace_s=0.1, progress_file=Sink())  # type: ignore[arg-type]
    outcome = await rebuild(event_store, document_store, "customer_summaries", options=options)
    assert outcome.switched and outcome.events > 0
    text = "".join(progress_lines)
    assert "customer_summaries v2" in text and "ev/s" in text
    with contextlib.suppress(StopIteration):
        status = next(
            s
            for s in await projection_statuses(document_store, event_store)
            if s.name == "customer_summaries"
        )
        assert status.version == 2 and status.rebuilding is None
