"""Rebuild speed and memory of ``order_views``, next to bulk-writing its final documents.

Run from the repository root:

    .venv/bin/python -m benchmarks.projector_rebuild [--events 50000] [--sizes 12500,50000]

For each size N (default: N/4 and N, to show that memory does not grow with the log) it:

1. seeds N order events (7 per order: created, 2 items added, 1 removed, placed, paid,
   shipped; one batch append per order through the esdbclient adapter) into a fresh
   embedded-eventstore (or ``EVENTSTORE_URI``);
2. rebuilds ``order_views`` (``rebuild_projection``, exactly what ``projector rebuild`` runs)
   in a child process, from position 0 to the switch, and reports events/s and the child's
   peak RSS (``ru_maxrss`` from ``wait4``: the rebuild alone, not the seeding); two more
   children rebuild with the read-model writes dropped: one for the projector's own rate
   (reading, decoding, planning, checkpoints), one under tracemalloc for the peak of Python
   allocations, the figure that shows memory does not grow with N;
3. baseline, same run, same MongoDB: bulk-writes the final documents the rebuild produced
   (ReplaceOne upserts through the same adapter, chunks of 200) into a fresh collection, and
   reports that as events/s too (N / its time). The ratio rebuild/baseline is the figure of
   merit (goal >= 0.5).

MongoDB is a fresh embedded-mongo in memory (``--mongo-engine sqlite`` for its SQLite engine),
or ``MONGO_URI``. The embedded servers are Python programs sharing the machine with the
benchmark: absolute numbers say more about them than about the projector; the ratio says how
much the projector adds on top of writing the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.order_events import (
    Address,
    ItemAdded,
    ItemRemoved,
    OrderCreated,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    order_stream,
)
from shared.contract.versioned_events import Event, EventMetadata, EventRegistry
from shared.ports.document_store import WriteOp
from shared.ports.event_store import NO_STREAM, NewEvent

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PER_ORDER = 7
ADDRESS = Address(line1="1 Main St", city="Lyon", postal_code="69001", country="FR")


def order_events(n: int) -> tuple[str, list[NewEvent]]:
    oid, cid = uuid.uuid4(), f"customer-{n % 1000}"
    lines = (OrderLine(sku="SKU-1", quantity=2, unit_price=500),)
    story: list[Event] = [
        OrderCreated(order_id=oid, customer_id=cid, currency="EUR", shipping_address=ADDRESS),
        ItemAdded(order_id=oid, sku="SKU-1", quantity=2, unit_price=500),
        ItemAdded(order_id=oid, sku="SKU-2", quantity=1, unit_price=1250),
        ItemRemoved(order_id=oid, sku="SKU-2"),
        OrderPlaced(order_id=oid, customer_id=cid, currency="EUR", lines=lines, total=1000),
        PaymentReceived(order_id=oid, customer_id=cid, currency="EUR", amount=1000),
        OrderShipped(order_id=oid, customer_id=cid, carrier="ACME", tracking_number=f"T{n}"),
    ]
    events = [
        NewEvent(
            uuid.uuid4(),
            event.event_type,
            EventRegistry.serialize(event),
            EventMetadata(schema_version=type(event).schema_version).to_json(),
        )
        for event in story
    ]
    return order_stream(oid), events


async def seed(uri: str, events: int, writers: int = 16) -> float:
    """Append ``events`` (rounded up to whole orders); returns seconds taken."""
    store = EsdbEventStore(uri)
    await store.connect()
    orders = -(-events // EVENTS_PER_ORDER)
    started = time.perf_counter()
    try:
        next_order = iter(range(orders))

        async def writer() -> None:
            for n in next_order:
                stream, batch = order_events(n)
                await store.append(stream, NO_STREAM, batch)

        await asyncio.gather(*(writer() for _ in range(writers)))
    finally:
        await store.close()
    return time.perf_counter() - started


class DiscardingReadModelWrites:
    """The real document store, except that writes to read-model collections are dropped
    (registry and checkpoints still go through): the projector's own cost, without MongoDB's
    cost of applying the updates."""

    def __init__(self, inner: MotorDocumentStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> None:
        if collection.startswith("order_views_v"):
            return
        await self._inner.bulk_write(collection, ops)


async def child_rebuild(
    eventstore_uri: str, mongo_uri: str, database: str, mode: str = "mongo"
) -> None:
    """Runs in the child process: rebuild order_views, print the outcome as JSON. Mode
    "mongo" writes for real, "discard" drops read-model writes, "traced" drops them too and
    reports the peak of Python allocations (tracemalloc slows the run: no rate from it)."""
    if mode == "traced":
        tracemalloc.start()
    from projector.catalog import pick, subscription_event_types
    from projector.projections import all_projections
    from projector.rebuild import RebuildOptions, rebuild_projection
    from projector.runner import RunnerSettings
    from shared.contract.order_events import build_order_event_registry

    events = EsdbEventStore(eventstore_uri)
    await events.connect()
    documents = MotorDocumentStore(mongo_uri, database)
    store: Any = documents if mode == "mongo" else DiscardingReadModelWrites(documents)
    projections = all_projections()
    options = RebuildOptions(
        runner=RunnerSettings(batch_size=int(os.environ.get("BENCH_BATCH", "1000"))),
        retire_grace_s=0,
        show_progress=False,
    )
    try:
        outcome = await rebuild_projection(
            events,
            store,
            build_order_event_registry(),
            pick(projections, "order_views"),
            event_types=subscription_event_types(projections),
            options=options,
            stop=asyncio.Event(),
        )
    finally:
        await events.close()
        await documents.close()
    traced_peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
    print(json.dumps({"events": outcome.events, "seconds": outcome.seconds, "traced": traced_peak}))


@dataclass(frozen=True)
class Rebuild:
    events: int
    seconds: float
    max_rss_mb: float
    traced_peak_mb: float


def run_rebuild(eventstore_uri: str, mongo_uri: str, database: str, mode: str) -> Rebuild:
    command = [sys.executable, "-m", "benchmarks.projector_rebuild", "--child-rebuild"]
    command += [eventstore_uri, mongo_uri, database, mode]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"rebuild child failed ({child.returncode}): {output}")
    result = json.loads(output.strip().splitlines()[-1])
    return Rebuild(
        result["events"], result["seconds"], usage.ru_maxrss / 1024, result["traced"] / 2**20
    )


async def baseline(mongo_uri: str, database: str) -> tuple[int, float]:
    """Bulk-write the rebuilt documents into a fresh collection: (documents, seconds)."""
    from shared.contract.read_models import resolve_active
    from shared.ports.document_store import ReplaceOne

    store = MotorDocumentStore(mongo_uri, database)
    try:
        active = await resolve_active(store, "order_views")
        documents = await store.find(active.collection, {})
        ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents]
        started = time.perf_counter()
        await store.bulk_write("baseline_order_views", ops)
        return len(documents), time.perf_counter() - started
    finally:
        await store.close()


def measure(size: int, directory: Path, args: argparse.Namespace) -> None:
    from tests.servers import eventstore_server, mongo_server

    with ExitStack() as servers:
        eventstore_uri = os.environ.get("EVENTSTORE_URI")
        if not eventstore_uri:
            server = eventstore_server(directory / f"events-{size}.sqlite").start()
            servers.callback(server.stop)
            eventstore_uri = server.uri
        mongo_uri = os.environ.get("MONGO_URI")
        if not mongo_uri:
            sqlite = directory / f"mongo-{size}.sqlite" if args.mongo_engine == "sqlite" else None
            mongo = mongo_server(sqlite).start()
            servers.callback(mongo.stop)
            mongo_uri = mongo.uri
        database = f"bench_{uuid.uuid4().hex[:12]}"
        seeded_s = asyncio.run(seed(eventstore_uri, size))
        alone = run_rebuild(eventstore_uri, mongo_uri, f"{database}_discard", "discard")
        traced = run_rebuild(eventstore_uri, mongo_uri, f"{database}_traced", "traced")
        rebuild = run_rebuild(eventstore_uri, mongo_uri, database, "mongo")
        documents, baseline_s = asyncio.run(baseline(mongo_uri, database))
    rebuild_rate = rebuild.events / rebuild.seconds
    baseline_rate = rebuild.events / baseline_s
    alone_rate = alone.events / alone.seconds
    print(
        f"{rebuild.events:>8,} events ({documents:,} orders; seeded in {seeded_s:.1f}s)\n"
        f"    rebuild   {rebuild.seconds:8.1f} s  {rebuild_rate:9,.0f} events/s"
        f"  peak RSS {rebuild.max_rss_mb:6.1f} MB\n"
        f"    baseline  {baseline_s:8.1f} s  {baseline_rate:9,.0f} events/s"
        f"  ({documents:,} final documents bulk-written)\n"
        f"    ratio     {rebuild_rate / baseline_rate:8.2f}  (goal >= 0.5)\n"
        f"    projector alone {alone.seconds:6.1f} s  {alone_rate:9,.0f} events/s"
        f"  peak RSS {alone.max_rss_mb:6.1f} MB  (same rebuild, read-model writes dropped)\n"
        f"    python allocations peak {traced.traced_peak_mb:5.1f} MB (tracemalloc)",
        flush=True,
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="largest size (default 50,000)")
    parser.add_argument(
        "--sizes", help="comma-separated sizes to run (default: events/4 and events)"
    )
    parser.add_argument("--mongo-engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--child-rebuild", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if str(ROOT) not in sys.path:  # the server launchers live with the test fixtures
        sys.path.insert(0, str(ROOT))
    if args.child_rebuild:
        asyncio.run(child_rebuild(*args.child_rebuild))
        return
    sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else [args.events // 4, args.events]
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="projector-bench-") as temporary:
        for size in sorted(sizes):
            measure(size, Path(temporary), args)
    print(f"\ntotal run time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
