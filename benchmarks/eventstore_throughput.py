"""Throughput and latency of embedded-eventstore, next to bare SQLite doing the same writes.

Run from the repository root:

    .venv/bin/python -m benchmarks.eventstore_throughput [--help]

It starts its own server in a temporary directory, then measures appends per second (1 and
--batch events per append, with 1 and --writers concurrent writers, each on its own stream and
connection), ``$all`` read speed, and subscription delivery latency (append acknowledged ->
event received by a live ``$all`` subscriber). The baseline inserts the same rows into a bare
SQLite file with the same durability (WAL, synchronous=FULL, one transaction per append); its
latency figure is the commit time of a one-row transaction, the floor for any durable append.

Each append scenario runs in --rounds rounds, server and baseline alternating, so both sides see
the same load from whatever else runs on the machine; the ratio is the median of the rounds'
ratios, printed with their spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from esdbclient import AsyncEventStoreDBClient, NewEvent, StreamState

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    name: str
    writers: int
    appends_per_writer: int
    events_per_append: int

    @property
    def events(self) -> int:
        return self.writers * self.appends_per_writer * self.events_per_append


def payload(writer: int, append: int, index: int) -> bytes:
    # ~100 bytes of JSON, about what an order event weighs.
    return json.dumps(
        {"order_id": f"order-{writer}-{append}", "line": index, "sku": "SKU-0001", "qty": 3}
    ).encode()


def new_batch(writer: int, append: int, size: int) -> list[NewEvent]:
    return [
        NewEvent(type="OrderLineAdded", data=payload(writer, append, index), metadata=b"{}")
        for index in range(size)
    ]


# --- the server -----------------------------------------------------------------------------


async def server_appends(uri: str, scenario: Scenario) -> float:
    """Events per second for ``scenario`` against the server."""
    run = uuid.uuid4().hex[:8]

    async def writer(number: int) -> None:
        client = AsyncEventStoreDBClient(uri)
        await client.connect()
        try:
            stream = f"bench-{run}-{number}"
            for append in range(scenario.appends_per_writer):
                version = (
                    StreamState.NO_STREAM
                    if append == 0
                    else append * scenario.events_per_append - 1
                )
                await client.append_to_stream(
                    stream,
                    current_version=version,
                    events=new_batch(number, append, scenario.events_per_append),
                )
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(writer(number) for number in range(scenario.writers)))
    return scenario.events / (time.perf_counter() - started)


async def server_read_all(uri: str) -> tuple[int, float]:
    """(events read, events per second) for one forwards read of all of ``$all``."""
    client = AsyncEventStoreDBClient(uri)
    await client.connect()
    try:
        await client.get_commit_position()  # connect before the clock starts
        started = time.perf_counter()
        count = 0
        async with await client.read_all(filter_exclude=[]) as events:
            async for _ in events:
                count += 1
        return count, count / (time.perf_counter() - started)
    finally:
        await client.close()


async def server_latency(uri: str, samples: int) -> tuple[list[float], list[float]]:
    """Seconds (from append acknowledged, from append sent) to event received, one at a time.

    An event that reaches the subscriber before the append call returns counts as 0 in the first.
    """
    client = AsyncEventStoreDBClient(uri)
    await client.connect()
    stream = f"bench-latency-{uuid.uuid4().hex[:8]}"
    received: dict[str, float] = {}
    arrived = asyncio.Condition()
    subscription = await client.subscribe_to_all(
        from_end=True, filter_include=[stream], filter_by_stream_name=True
    )

    async def listen() -> None:
        async for event in subscription:
            async with arrived:
                received[str(event.id)] = time.perf_counter()
                arrived.notify_all()

    listener = asyncio.create_task(listen())
    from_ack, from_send = [], []
    try:
        for number in range(samples):
            (event,) = new_batch(0, number, 1)
            event_id = str(event.id)
            sent = time.perf_counter()
            await client.append_to_stream(stream, current_version=StreamState.ANY, events=[event])
            acknowledged = time.perf_counter()
            async with asyncio.timeout(30), arrived:
                await arrived.wait_for(lambda id_=event_id: id_ in received)
            from_ack.append(max(0.0, received[event_id] - acknowledged))
            from_send.append(received[event_id] - sent)
    finally:
        await subscription.stop()
        listener.cancel()
        await client.close()
    return from_ack, from_send


# --- the baseline ---------------------------------------------------------------------------


def open_sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY AUTOINCREMENT,"
        " stream TEXT NOT NULL, revision INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, data BLOB NOT NULL, metadata BLOB NOT NULL,"
        " content_type TEXT NOT NULL, created INTEGER NOT NULL, UNIQUE (stream, revision))"
    )
    return connection


def sqlite_append(
    connection: sqlite3.Connection, stream: str, first: int, events: list[NewEvent]
) -> None:
    """One transaction per append, like the server's."""
    created = time.time_ns() // 100
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO events (stream, revision, id, type, data, metadata, content_type, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (stream, first + index, str(e.id), e.type, e.data, e.metadata, e.content_type, created)
            for index, e in enumerate(events)
        ],
    )
    connection.execute("COMMIT")


def baseline_appends(path: Path, scenario: Scenario) -> float:
    run = uuid.uuid4().hex[:8]

    def writer(number: int) -> None:
        connection = open_sqlite(path)
        stream = f"bench-{run}-{number}"
        for append in range(scenario.appends_per_writer):
            events = new_batch(number, append, scenario.events_per_append)
            sqlite_append(connection, stream, append * scenario.events_per_append, events)
        connection.close()

    open_sqlite(path).close()  # create the table before the writers race for it
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(scenario.writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return scenario.events / (time.perf_counter() - started)


def baseline_read_all(path: Path) -> tuple[int, float]:
    connection = open_sqlite(path)
    started = time.perf_counter()
    count = sum(1 for _ in connection.execute("SELECT * FROM events ORDER BY position"))
    elapsed = time.perf_counter() - started
    connection.close()
    return count, count / elapsed


def baseline_latency(path: Path, samples: int) -> list[float]:
    connection = open_sqlite(path)
    latencies = []
    for number in range(samples):
        started = time.perf_counter()
        sqlite_append(connection, "bench-latency", number, new_batch(0, number, 1))
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies


# --- running and reporting ------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(
    label: str,
    server: float,
    baseline: float,
    unit: str,
    higher_is_better: bool,
    round_ratios: list[float] | None = None,
) -> None:
    """One line; with `round_ratios` the ratio is their median, followed by their range."""
    if round_ratios:
        ratio = statistics.median(round_ratios)
        spread = f" rounds {min(round_ratios):.2f}-{max(round_ratios):.2f}"
    else:
        ratio = server / baseline if baseline else float("nan")
        spread = ""
    better = "higher" if higher_is_better else "lower"
    print(
        f"{label:<38} {server:>12,.1f} {unit:<9} baseline {baseline:>12,.1f}"
        f"   ratio {ratio:6.2f}x ({better} is better){spread}"
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=1200, help="1-event appends per scenario")
    parser.add_argument("--batch", type=int, default=50, help="events per batched append")
    parser.add_argument(
        "--batch-appends", type=int, default=120, help="batched appends per scenario"
    )
    parser.add_argument("--writers", type=int, default=4, help="concurrent writers")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="server/baseline rounds per append scenario, sharing its appends",
    )
    parser.add_argument("--latency-samples", type=int, default=500)
    parser.add_argument("--dir", type=Path, help="where to put the databases (default: a temp dir)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """1 and --batch events per append, by 1 and by --writers writers sharing the total; each
    scenario is one round's share (the rounds together make the total)."""
    return [
        Scenario(
            f"appends, {size} per append, {writers} writer(s)",
            writers,
            max(1, total // writers // args.rounds),
            size,
        )
        for writers in (1, args.writers)
        for size, total in ((1, args.appends), (args.batch, args.batch_appends))
    ]


def measure_appends(uri: str, baseline: Path, scenario: Scenario, rounds: int) -> None:
    """Alternate server and baseline rounds; rates over all rounds, ratio per round."""
    server_rates, baseline_rates = [], []
    for _ in range(rounds):
        server_rates.append(asyncio.run(server_appends(uri, scenario)))
        baseline_rates.append(baseline_appends(baseline, scenario))
    report(
        scenario.name,
        rounds / sum(1 / rate for rate in server_rates),  # events / total time
        rounds / sum(1 / rate for rate in baseline_rates),
        "events/s",
        True,
        [server / base for server, base in zip(server_rates, baseline_rates, strict=True)],
    )


def measure(directory: Path, args: argparse.Namespace, uri: str) -> None:
    baseline = directory / "baseline.sqlite"
    print(f"server {uri}, databases in {directory}\n")
    for scenario in scenarios(args):
        measure_appends(uri, baseline, scenario, args.rounds)

    count, read_rate = asyncio.run(server_read_all(uri))
    baseline_count, baseline_rate = baseline_read_all(baseline)
    report(
        f"$all read ({count:,} / {baseline_count:,} events)",
        read_rate,
        baseline_rate,
        "events/s",
        True,
    )

    from_ack, from_send = asyncio.run(server_latency(uri, args.latency_samples))
    commits = baseline_latency(baseline, args.latency_samples)
    for label, latencies in (("ack", from_ack), ("send", from_send)):
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            report(
                f"delivery latency from {label} {name}",
                percentile(latencies, fraction) * 1000,
                percentile(commits, fraction) * 1000,
                "ms",
                False,
            )
    print(
        "(latency baseline: SQLite commit of a one-row transaction; an event delivered before"
        " its append call returned counts as 0 ms from ack)"
    )


def main() -> None:
    args = parse_arguments()
    if str(ROOT) not in sys.path:  # the server launcher lives with the test fixtures
        sys.path.insert(0, str(ROOT))
    from tests.servers import eventstore_server

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="esdb-bench-") as temporary:
        directory = args.dir or Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        server = eventstore_server(directory / "events.sqlite").start()
        try:
            measure(directory, args, server.uri)
        finally:
            server.stop()
    print(f"\ntotal run time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
