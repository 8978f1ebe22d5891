"""Commands per second and latency through the HTTP API, next to raw esdbclient appends, with the
CPU each process used.

Run from the repository root (about a minute):

    .venv/bin/python -m benchmarks.command_throughput [--seconds 7] [--concurrency 1,8,32]
        [--eventstore-uri URI [--eventstore-pid PID]]

Three processes take part, so each one's CPU can be told apart:

- the store: an embedded-eventstore this benchmark starts, or the server ``--eventstore-uri``
  names (its CPU is measured when ``--eventstore-pid`` gives its process id on this machine);
- the API: the real app (``create_app``, which builds its own esdbclient adapter) served the way
  ``orders-api`` serves it (``orders_api.server.build_server``: its HTTP protocol, its event
  loop, its limits), in a process of its own;
- the load generator (this process): a plain asyncio HTTP/1.1 client, one keep-alive
  connection per worker, that parses only the status line, ``Content-Length`` and (for a create)
  the order id. It costs the API's share of the two cores as little as a client can.

At each concurrency every worker creates an order, then adds items to it (a new order every
``ORDERS_EVERY`` commands). A command is HTTP + validation + load the order + decide + append
one event. The baseline, in the same run and at the same concurrency, appends the same events
(the bytes the API stored, with fresh ids) straight through one esdbclient client from this
process (``append_to_stream``: a gRPC call per append), each worker to its own stream at the
right expected revision: the cost of the write alone. The ratio API/raw says what the API adds
on top. (The API's event store adapter keeps its BatchAppend calls open from one append to the
next, which costs the client and the store less than a call per append.)

CPU is read from ``/proc/<pid>/stat`` (Linux) around each measurement and shown as cores used
(CPU seconds / wall seconds) per process and as CPU milliseconds per operation. On cores that
are saturated (by the run itself or by others: the load averages are printed) throughput
follows the CPU each operation costs, so raw/API of the CPU per operation of all three
processes is printed too: it moves much less with other people's load than the rates do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esdbclient import AsyncEventStoreDBClient, NewEvent, StreamState

from shared.ports.errors import StoreUnavailable
from tests.servers import eventstore_server
from tests.soak.http import ApiClient

ORDERS_EVERY = 10  # commands per order before a worker starts a new one
START_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 30.0  # one command's answer; far beyond any the API gives
ADDRESS = {
    "line1": "1 Main Street",
    "line2": "",
    "city": "Dublin",
    "postal_code": "D01 F5P2",
    "country": "IE",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class NoDocumentStore:
    """The command API never touches MongoDB; the read side's wiring only needs an object."""

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def down(*_: object, **__: object) -> Any:
            raise StoreUnavailable("mongodb", "not used by this benchmark")

        return down


# --- CPU accounting -------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of process ``pid`` (all its threads) so far; this process's for None;
    None when it cannot be read (not Linux, or the process is gone)."""
    if pid is None:
        return time.process_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


@dataclass
class CpuMeter:
    """CPU used by each named process between ``start`` and ``stop``."""

    pids: dict[str, int | None]
    started: dict[str, float | None] = field(default_factory=dict)
    used: dict[str, float | None] = field(default_factory=dict)

    def start(self) -> None:
        self.started = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        for name, pid in self.pids.items():
            now, then = cpu_seconds(pid), self.started.get(name)
            self.used[name] = None if now is None or then is None else now - then


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Sample:
    operations: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu: dict[str, float | None] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def cores(self, name: str) -> str:
        used = self.cpu.get(name)
        return "   n/a" if used is None else f"{used / self.seconds:6.2f}"

    def ms_per_op(self, name: str) -> str:
        used = self.cpu.get(name)
        return "   n/a" if used is None else f"{1000 * used / max(1, self.operations):6.2f}"

    def total_ms_per_op(self) -> float | None:
        """CPU milliseconds per operation of every process measured; None if one was not."""
        if any(used is None for used in self.cpu.values()):
            return None
        return 1000 * sum(used or 0.0 for used in self.cpu.values()) / max(1, self.operations)


async def run_for(
    seconds: float,
    concurrency: int,
    worker: Callable[[int, Callable[[], bool]], Awaitable[Any]],
    meter: CpuMeter,
) -> float:
    """Run ``concurrency`` workers until ``seconds`` have passed; returns the elapsed time. The
    meter covers exactly the run."""
    meter.start()
    started = time.perf_counter()
    deadline = started + seconds

    def more() -> bool:
        return time.perf_counter() < deadline

    await asyncio.gather(*(worker(number, more) for number in range(concurrency)))
    elapsed = time.perf_counter() - started
    meter.stop()
    return elapsed


def api_client(host: str, port: int) -> ApiClient:
    """One keep-alive connection to the API (the soak's light HTTP/1.1 client)."""
    return ApiClient(f"http://{host}:{port}", timeout=HTTP_TIMEOUT_S, max_connections=1)


async def api_commands(
    host: str, port: int, concurrency: int, seconds: float, meter: CpuMeter
) -> Sample:
    latencies: list[float] = []
    failures = 0

    async def worker(number: int, more: Callable[[], bool]) -> None:
        nonlocal failures
        create: dict[str, object] = {
            "customer_id": f"bench-{number}",
            "currency": "EUR",
            "shipping_address": ADDRESS,
        }
        order_id = ""
        done = 0
        async with api_client(host, port) as api:
            while more():
                if done % ORDERS_EVERY == 0:
                    path, body = "/orders", create
                else:
                    item = {"sku": f"SKU-{done:04d}", "quantity": 1 + done % 5, "unit_price": 1250}
                    path, body = f"/orders/{order_id}/items", item
                sent = time.perf_counter()
                answer = await api.request("POST", path, json=body)
                latencies.append(time.perf_counter() - sent)
                if not answer.is_success:
                    failures += 1
                elif done % ORDERS_EVERY == 0:
                    order_id = answer.json()["order_id"]
                done += 1

    elapsed = await run_for(seconds, concurrency, worker, meter)
    return Sample(len(latencies), elapsed, latencies, failures, dict(meter.used))


async def stored_events(client: AsyncEventStoreDBClient, order_id: str) -> list[NewEvent]:
    """The exact bytes the API stored for one order (created + items), to append again."""
    recorded = await client.get_stream(f"order-{order_id}")
    return [NewEvent(type=e.type, data=e.data, metadata=e.metadata) for e in recorded]


async def raw_appends(
    client: AsyncEventStoreDBClient,
    template: Sequence[NewEvent],
    concurrency: int,
    seconds: float,
    meter: CpuMeter,
) -> Sample:
    latencies: list[float] = []
    run = uuid.uuid4().hex[:8]

    async def worker(number: int, more: Callable[[], bool]) -> None:
        done = 0
        stream = ""
        while more():
            index = done % ORDERS_EVERY
            if index == 0:
                stream = f"bench-raw-{run}-{number}-{done}"
            source = template[index % len(template)]
            event = NewEvent(type=source.type, data=source.data, metadata=source.metadata)
            expected = StreamState.NO_STREAM if index == 0 else index - 1
            sent = time.perf_counter()
            await client.append_to_stream(stream, current_version=expected, events=[event])
            latencies.append(time.perf_counter() - sent)
            done += 1

    elapsed = await run_for(seconds, concurrency, worker, meter)
    return Sample(len(latencies), elapsed, latencies, 0, dict(meter.used))


# --- the API process ------------------------------------------------------------------------


def serve_api(eventstore_uri: str, port: int) -> None:
    """The API process: the app served as ``orders-api`` serves it, without MongoDB."""
    from orders_api.app import create_app
    from orders_api.server import build_server
    from orders_api.settings import ApiSettings

    settings = ApiSettings(
        eventstore_uri=eventstore_uri, api_host="127.0.0.1", api_port=port, log_level="WARNING"
    )
    logging.basicConfig(level=logging.WARNING)
    app = create_app(settings, document_store=NoDocumentStore())  # type: ignore[arg-type]
    build_server(app, settings).run()


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port: int = listener.getsockname()[1]
        return port


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    """Until the API accepts connections (uvicorn listens only once its lifespan started)."""
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"the API process exited with {process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


# --- the run --------------------------------------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or n/a (the cores may be shared with others)."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def report(rows: list[tuple[int, Sample, Sample]], store_measured: bool) -> None:
    print()
    print(
        f"{'conc':>4} | {'API cmd/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'fail':>4} | "
        f"{'raw app/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'API/raw':>7}"
    )
    print("-" * 84)
    for concurrency, api, raw in rows:
        print(
            f"{concurrency:>4} | {api.rate:>9.0f} {api.percentile(0.5):>7.1f} "
            f"{api.percentile(0.99):>7.1f} {api.failures:>4} | {raw.rate:>9.0f} "
            f"{raw.percentile(0.5):>7.1f} {raw.percentile(0.99):>7.1f} | "
            f"{api.rate / raw.rate:>7.2f}"
        )
    print()
    print("CPU: cores used (CPU s / wall s) and CPU ms per operation, per process")
    print(f"{'conc':>4} {'run':>4} | {'generator':>15} | {'API':>15} | {'store':>15}")
    for concurrency, api, raw in rows:
        for label, sample in (("API", api), ("raw", raw)):
            cells = [
                f"{sample.cores(name)} {sample.ms_per_op(name)}ms"
                for name in ("generator", "api", "store")
            ]
            print(f"{concurrency:>4} {label:>4} | " + " | ".join(cells))
    if store_measured:
        print()
        print("CPU ms per operation, all three processes, and raw/API of it: the ratio API/raw")
        print("tends to when the cores are saturated (each operation then costs its CPU).")
        for concurrency, api, raw in rows:
            api_ms, raw_ms = api.total_ms_per_op(), raw.total_ms_per_op()
            if api_ms is not None and raw_ms is not None:
                print(
                    f"{concurrency:>4} | API {api_ms:5.2f} ms | raw {raw_ms:5.2f} ms | "
                    f"raw/API {raw_ms / api_ms:5.2f}"
                )
    print()
    print("API/raw: commands per second through the API / raw appends per second of the same")
    print("events (1.00 would mean HTTP + validation + load + decision cost nothing).")
    if not store_measured:
        print("The store's CPU is not measured: give its process id with --eventstore-pid.")


async def benchmark(
    eventstore_uri: str, store_pid: int | None, levels: Sequence[int], seconds: float
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "benchmarks.command_throughput", "--serve-api", str(port)),
        *("--eventstore-uri", eventstore_uri),
    )
    raw = AsyncEventStoreDBClient(eventstore_uri)
    rows: list[tuple[int, Sample, Sample]] = []
    meter = CpuMeter({"generator": None, "api": process.pid, "store": store_pid})
    print(f"load average at the start: {load_average()}", flush=True)
    try:
        await wait_listening(port, process)
        await raw.connect()
        warm = await api_commands("127.0.0.1", port, 4, 1.0, meter)
        print(f"warm-up: {warm.operations} commands, {warm.failures} failed", flush=True)
        async with api_client("127.0.0.1", port) as client:
            order = {"customer_id": "t", "currency": "EUR", "shipping_address": ADDRESS}
            order_id = (await client.post("/orders", json=order)).json()["order_id"]
            for n in range(ORDERS_EVERY - 1):
                item = {"sku": f"SKU-{n:04d}", "quantity": 1 + n % 5, "unit_price": 1250}
                await client.post(f"/orders/{order_id}/items", json=item)
        template = await stored_events(raw, order_id)
        for concurrency in levels:
            api = await api_commands("127.0.0.1", port, concurrency, seconds, meter)
            baseline = await raw_appends(raw, template, concurrency, seconds, meter)
            print(
                f"concurrency {concurrency}: API {api.rate:.0f}/s, raw {baseline.rate:.0f}/s",
                flush=True,
            )
            rows.append((concurrency, api, baseline))
    finally:
        await raw.close()
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    report(rows, store_pid is not None)
    print(f"load average at the end: {load_average()}")
    sizes = [len(e.data) + len(e.metadata) for e in template]
    print(f"event sizes (data + metadata bytes): {min(sizes)}..{max(sizes)}, median ", end="")
    print(f"{statistics.median(sizes):.0f}; {seconds:.0f} s per measurement")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=7.0, help="per measurement")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--eventstore-uri", help="use this server instead of an embedded one")
    parser.add_argument("--eventstore-pid", type=int, help="its process id, to measure its CPU")
    parser.add_argument("--serve-api", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_api is not None:
        serve_api(args.eventstore_uri, args.serve_api)
        return
    levels = [int(level) for level in args.concurrency.split(",")]
    logging.basicConfig(level=logging.WARNING)
    if args.eventstore_uri:
        asyncio.run(benchmark(args.eventstore_uri, args.eventstore_pid, levels, args.seconds))
        return
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as directory:
        server = eventstore_server(Path(directory) / "events.sqlite").start()
        try:
            print(f"embedded-eventstore at {server.uri}", flush=True)
            pid = server.process.pid if server.process is not None else None
            asyncio.run(benchmark(server.uri, pid, levels, args.seconds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
