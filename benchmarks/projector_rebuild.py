"""Rebuild speed and memory of ``order_views``, next to bulk-writing its final documents.

Run from the repository root (three to four minutes with the default sizes on 2 cores):

    .venv/bin/python -m benchmarks.projector_rebuild [--sizes 10000,50000,100000]
        [--mongo-engine memory|sqlite] [--time-limit 900] [--breakdown] [--profile DIR]

For each size N (default 10,000, 50,000 and 100,000, back to back, each with fresh servers) it:

1. seeds N order events (7 per order: created, 2 items added, 1 removed, placed, paid,
   shipped; one batch append per order through the esdbclient adapter) into a fresh
   embedded-eventstore (or ``EVENTSTORE_URI``);
2. rebuilds ``order_views`` (``rebuild_projection``, exactly what ``projector rebuild`` runs)
   in a child process, from position 0 to the switch, and reports events/s and the child's
   peak RSS (its ``VmHWM``: the rebuild alone, not the seeding). A rebuild still
   running after ``--time-limit`` seconds is interrupted (SIGINT: it finishes its batch and
   stops, as Ctrl-C does) and the size is reported as not finished, with its rate so far. A
   size that cannot be measured at all (a server or the child failing) is reported as SKIPPED
   with the reason, and the run goes on with the next size;
3. baseline, same run, same MongoDB: bulk-writes the documents the rebuild produced (ReplaceOne
   upserts through the same adapter, chunks of 200) into a fresh collection, and reports that
   as events/s too (the rebuild's events / its time). The ratio rebuild/baseline is the figure
   of merit (goal >= 0.8): how close the rebuild comes to just writing its result.

Beside each figure: the CPU time of the rebuild child, of the embedded-mongo server and of the
embedded-eventstore during the rebuild, and of the embedded-mongo server during the baseline
(less sensitive than wall time to other work on the machine), and the load average: on a
machine whose cores are all busy, the rebuild (three processes: reading the log, folding,
writing) can only come as close to the baseline (one process writing) as their CPU times allow.
``BENCH_BATCH=N`` sets the rebuild's batch size (default: the runner's, as ``projector rebuild``
without ``--batch-size``). With ``--breakdown``, two more children rebuild
each size with the read-model writes dropped: one for the projector's own rate (reading,
decoding, folding, checkpoints), one under tracemalloc for the peak of Python allocations.

With ``--profile DIR``, py-spy (installed separately) records the rebuild child and both servers
while each rebuild runs, as collapsed stacks in ``DIR``.

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
import resource
import shutil
import signal
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
from shared.ports.document_store import WriteOp, WriteResult
from shared.ports.event_store import NO_STREAM, NewEvent

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PER_ORDER = 7
READ_PAGE = 1000
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
    cost of applying the updates. Reads find nothing there, so every write looks new."""

    def __init__(self, inner: MotorDocumentStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if collection.startswith("order_views_v"):
            return WriteResult(changed=len(ops))
        return await self._inner.bulk_write(collection, ops)


async def child_rebuild(
    eventstore_uri: str, mongo_uri: str, database: str, mode: str = "mongo"
) -> None:
    """Runs in the child process: rebuild order_views, print the outcome as JSON. Mode
    "mongo" writes for real, "discard" drops read-model writes, "traced" drops them too and
    reports the peak of Python allocations (tracemalloc slows the run: no rate from it).
    SIGINT stops the rebuild the way Ctrl-C stops ``projector rebuild``."""
    if mode == "traced":
        tracemalloc.start()
    from projector.catalog import pick, subscription_event_types
    from projector.projections import all_projections
    from projector.rebuild import RebuildOptions, rebuild_projection
    from projector.runner import RunnerSettings
    from shared.contract.order_events import build_order_event_registry

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    events = EsdbEventStore(eventstore_uri)
    await events.connect()
    documents = MotorDocumentStore(mongo_uri, database, call_timeout_s=120)
    store: Any = documents if mode == "mongo" else DiscardingReadModelWrites(documents)
    projections = all_projections()
    batch_size = os.environ.get("BENCH_BATCH")
    runner = RunnerSettings(batch_size=int(batch_size)) if batch_size else RunnerSettings()
    options = RebuildOptions(runner=runner, retire_grace_s=0, show_progress=False)
    try:
        outcome = await rebuild_projection(
            events,
            store,
            build_order_event_registry(),
            pick(projections, "order_views"),
            event_types=subscription_event_types(projections),
            options=options,
            stop=stop,
        )
    finally:
        await events.close()
        await documents.close()
    traced_peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
    result = {
        "events": outcome.events,
        "seconds": outcome.seconds,
        "switched": outcome.switched,
        "version": outcome.version,
        "traced": traced_peak,
        "peak_rss_kib": peak_rss_kib(),
    }
    print(json.dumps(result))


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM) since it started its program. Not wait4's
    ``ru_maxrss``: that also counts the parent's pages the child held between fork and exec,
    and the parent grows with every size it seeds."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class SizeFailed(Exception):
    """One size could not be measured; the run goes on with the next."""


@dataclass(frozen=True)
class Rebuild:
    events: int
    seconds: float
    switched: bool
    version: int
    max_rss_mb: float
    cpu_s: float
    traced_peak_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a local process has used so far; 0 for a remote server."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Profiles:
    """py-spy recordings (raw, collapsed stacks) of processes while a rebuild runs: the
    rebuild child and the servers, one file each in ``directory``."""

    def __init__(self, directory: Path | None, servers: dict[str, int]) -> None:
        self._directory = directory
        self._servers = servers
        self._recorders: list[subprocess.Popen[bytes]] = []

    def start(self, label: str, child: int) -> None:
        if self._directory is None:
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self._directory.mkdir(parents=True, exist_ok=True)
        for name, pid in {"rebuild": child, **self._servers}.items():
            out = self._directory / f"{label}-{name}.txt"
            command = [py_spy, "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o", str(out)]
            recorder = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self._recorders.append(recorder)

    def stop(self) -> None:
        for recorder in self._recorders:
            if recorder.poll() is None:
                recorder.send_signal(signal.SIGINT)
        for recorder in self._recorders:
            recorder.wait(60)
        self._recorders.clear()


def run_rebuild(
    eventstore_uri: str,
    mongo_uri: str,
    database: str,
    mode: str,
    time_limit_s: float,
    profiles: Profiles,
    label: str,
) -> Rebuild:
    """The rebuild in a child process; interrupted (SIGINT) after ``time_limit_s``."""
    command = [sys.executable, "-m", "benchmarks.projector_rebuild", "--child-rebuild"]
    command += [eventstore_uri, mongo_uri, database, mode]
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(command, cwd=ROOT, stdout=output, text=True)
        profiles.start(label, child.pid)
        deadline = time.monotonic() + time_limit_s
        interrupted = False
        while True:  # wait4 (not Popen.wait) reaps the child with its resource usage
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if not interrupted and time.monotonic() >= deadline:
                child.send_signal(signal.SIGINT)
                interrupted = True
            time.sleep(0.1)
        child.returncode = os.waitstatus_to_exitcode(status)
        profiles.stop()
        output.seek(0)
        text = output.read()
    if child.returncode != 0:
        output_end = text.strip().splitlines()[-1:] or ["its traceback is printed above"]
        raise SizeFailed(
            f"the rebuild child failed (exit code {child.returncode}): {output_end[0]}"
        )
    result = json.loads(text.strip().splitlines()[-1])
    return Rebuild(
        events=result["events"],
        seconds=result["seconds"],
        switched=result["switched"],
        version=result["version"],
        max_rss_mb=result["peak_rss_kib"] / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        traced_peak_mb=result["traced"] / 2**20,
    )


async def read_all(store: MotorDocumentStore, collection: str) -> list[dict[str, Any]]:
    """Every document of ``collection``, a page at a time in ``_id`` order: one query for all
    of them keeps the embedded server busy long enough (100k events) for the driver's
    monitor to give up on it."""
    documents: list[dict[str, Any]] = []
    while True:
        after = {"_id": {"$gt": documents[-1]["_id"]}} if documents else {}
        page = await store.find(collection, after, sort=[("_id", 1)], limit=READ_PAGE)
        documents += page
        if len(page) < READ_PAGE:
            return documents


async def baseline(mongo_uri: str, database: str, collection: str) -> tuple[int, float]:
    """Bulk-write the rebuilt documents into a fresh collection: (documents, seconds)."""
    from shared.ports.document_store import ReplaceOne

    store = MotorDocumentStore(mongo_uri, database, call_timeout_s=120)
    try:
        documents = await read_all(store, collection)
        ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents]
        started = time.perf_counter()
        await store.bulk_write("baseline_order_views", ops)
        return len(documents), time.perf_counter() - started
    finally:
        await store.close()


def measure(size: int, directory: Path, args: argparse.Namespace) -> None:
    from shared.contract.read_models import collection_name
    from tests.servers import eventstore_server, mongo_server

    pids: dict[str, int] = {}
    with ExitStack() as servers:
        eventstore_uri = os.environ.get("EVENTSTORE_URI")
        if not eventstore_uri:
            server = eventstore_server(directory / f"events-{size}.sqlite").start()
            servers.callback(server.stop)
            eventstore_uri = server.uri
            if server.process is not None:
                pids["eventstore"] = server.process.pid
        mongo_uri = os.environ.get("MONGO_URI")
        if not mongo_uri:
            sqlite = directory / f"mongo-{size}.sqlite" if args.mongo_engine == "sqlite" else None
            mongo = mongo_server(sqlite).start()
            servers.callback(mongo.stop)
            mongo_uri = mongo.uri
            if mongo.process is not None:
                pids["mongo"] = mongo.process.pid
        profiles = Profiles(args.profile, pids)
        database = f"bench_{uuid.uuid4().hex[:12]}"
        seeded_s = asyncio.run(seed(eventstore_uri, size))
        mongo_cpu = cpu_seconds(pids.get("mongo"))
        eventstore_cpu = cpu_seconds(pids.get("eventstore"))
        rebuild = run_rebuild(
            eventstore_uri, mongo_uri, database, "mongo", args.time_limit, profiles, f"{size}"
        )
        mongo_cpu_rebuild = cpu_seconds(pids.get("mongo")) - mongo_cpu
        eventstore_cpu_rebuild = cpu_seconds(pids.get("eventstore")) - eventstore_cpu
        finished = (
            "to the switch"
            if rebuild.switched
            else f"NOT FINISHED: interrupted after the {args.time_limit:g} s time limit; the "
            f"figures are for the {rebuild.events:,} events it did"
        )
        print(
            f"{size:>8,} events ({-(-size // EVENTS_PER_ORDER):,} orders; seeded in"
            f" {seeded_s:.1f}s)  rebuild {finished}; load average {load_average()}\n"
            f"    rebuild   {rebuild.seconds:8.1f} s  {rebuild.rate:9,.0f} events/s"
            f"  peak RSS {rebuild.max_rss_mb:6.1f} MB  CPU {rebuild.cpu_s:5.1f} s,"
            f" mongo server CPU {mongo_cpu_rebuild:5.1f} s,"
            f" eventstore CPU {eventstore_cpu_rebuild:5.1f} s",
            flush=True,
        )
        built = collection_name("order_views", rebuild.version)
        mongo_cpu = cpu_seconds(pids.get("mongo"))
        try:
            documents, baseline_s = asyncio.run(baseline(mongo_uri, database, built))
        except Exception as error:  # the rebuild's figures stand; say why there is no ratio
            print(f"    baseline  FAILED: {why(error)}", flush=True)
        else:
            mongo_cpu_baseline = cpu_seconds(pids.get("mongo")) - mongo_cpu
            baseline_rate = rebuild.events / baseline_s
            print(
                f"    baseline  {baseline_s:8.1f} s  {baseline_rate:9,.0f} events/s"
                f"  ({documents:,} documents bulk-written;"
                f" mongo server CPU {mongo_cpu_baseline:5.1f} s)\n"
                f"    ratio     {rebuild.rate / baseline_rate:8.2f}  (goal >= 0.8)",
                flush=True,
            )
        if args.breakdown:
            breakdown = [
                run_rebuild(
                    eventstore_uri,
                    mongo_uri,
                    f"{database}_{mode}",
                    mode,
                    args.time_limit,
                    profiles,
                    f"{size}-{mode}",
                )
                for mode in ("discard", "traced")
            ]
            alone, traced = breakdown
            print(
                f"    projector alone {alone.seconds:6.1f} s  {alone.rate:9,.0f} events/s"
                f"  peak RSS {alone.max_rss_mb:6.1f} MB  (same rebuild, read-model writes"
                " dropped)\n"
                f"    python allocations peak {traced.traced_peak_mb:5.1f} MB (tracemalloc)",
                flush=True,
            )


def why(error: Exception) -> str:
    """One line saying why a size could not be measured."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else 'no message'}"


def load_average() -> str:
    """1, 5 and 15 minute load averages: other work on the machine skews wall times."""
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="10000,50000,100000",
        help="comma-separated numbers of events (default 10000,50000,100000)",
    )
    parser.add_argument("--mongo-engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=900.0,
        help="seconds a rebuild may run before it is interrupted and reported unfinished",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also rebuild with read-model writes dropped (rate, tracemalloc peak)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="directory for py-spy recordings of the rebuild and the servers while it runs",
    )
    parser.add_argument("--child-rebuild", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if str(ROOT) not in sys.path:  # the server launchers live with the test fixtures
        sys.path.insert(0, str(ROOT))
    if args.child_rebuild:
        asyncio.run(child_rebuild(*args.child_rebuild))
        return
    sizes = sorted(int(size) for size in args.sizes.split(","))
    started = time.perf_counter()
    print(f"load average at start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="projector-bench-") as temporary:
        for size in sizes:
            try:
                measure(size, Path(temporary), args)
            except Exception as error:  # say why, and go on with the next size
                print(f"{size:>8,} events  SKIPPED: {why(error)}", flush=True)
    print(f"\ntotal run time {time.perf_counter() - started:.1f} s", flush=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
