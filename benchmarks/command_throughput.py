"""Commands per second and latency through the HTTP API, next to raw esdbclient appends.

Run from the repository root (about a minute):

    .venv/bin/python -m benchmarks.command_throughput [--seconds 7] [--eventstore-uri URI]

It starts its own embedded-eventstore (unless ``--eventstore-uri`` names a server), serves the
real app (``create_app``, which builds its own esdbclient adapter) with uvicorn on a free
loopback port in this process, and drives it over real HTTP with httpx at each concurrency:
every worker creates an order, then adds items to it (a new order every ``ORDERS_EVERY``
commands). A command is load the stream + decide + append one event.

The baseline, in the same run and at the same concurrency, appends the same events (the bytes
the API stored, with fresh ids) straight through one esdbclient client, each worker to its own
stream at the right expected revision: the cost of the write alone, without HTTP, validation,
the stream read and the decision. The ratio says what the API adds on top.

Client and server share this process (and the GIL), so the API figures include the client's
own cost; they are a lower bound of what a separate client would see.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from esdbclient import AsyncEventStoreDBClient, NewEvent, StreamState

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.ports.errors import StoreUnavailable
from tests.servers import eventstore_server

ORDERS_EVERY = 10  # commands per order before a worker starts a new one
ADDRESS = {
    "line1": "1 Main Street",
    "line2": "",
    "city": "Dublin",
    "postal_code": "D01 F5P2",
    "country": "IE",
}


class NoDocumentStore:
    """The command API never touches MongoDB; the read side's wiring only needs an object."""

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def down(*_: object, **__: object) -> Any:
            raise StoreUnavailable("mongodb", "not used by this benchmark")

        return down


@dataclass
class Sample:
    operations: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def run_for(
    seconds: float, concurrency: int, worker: Callable[[int, Callable[[], bool]], Awaitable[Any]]
) -> float:
    """Run ``concurrency`` workers until ``seconds`` have passed; returns the elapsed time."""
    started = time.perf_counter()
    deadline = started + seconds

    def more() -> bool:
        return time.perf_counter() < deadline

    await asyncio.gather(*(worker(number, more) for number in range(concurrency)))
    return time.perf_counter() - started


# --- through the API ------------------------------------------------------------------------


async def api_commands(client: httpx.AsyncClient, concurrency: int, seconds: float) -> Sample:
    latencies: list[float] = []
    failures = 0

    async def timed(method: str, url: str, body: dict[str, Any]) -> httpx.Response:
        nonlocal failures
        sent = time.perf_counter()
        response = await client.request(method, url, json=body)
        latencies.append(time.perf_counter() - sent)
        if not response.is_success:
            failures += 1
        return response

    async def worker(number: int, more: Callable[[], bool]) -> None:
        order_id = ""
        done = 0
        while more():
            if done % ORDERS_EVERY == 0:
                order = {"customer_id": f"bench-{number}", "currency": "EUR"}
                response = await timed("POST", "/orders", {**order, "shipping_address": ADDRESS})
                order_id = response.json().get("order_id", "")
            else:
                item = {"sku": f"SKU-{done:04d}", "quantity": 1 + done % 5, "unit_price": 1250}
                await timed("POST", f"/orders/{order_id}/items", item)
            done += 1

    elapsed = await run_for(seconds, concurrency, worker)
    return Sample(len(latencies), elapsed, latencies, failures)


# --- raw appends (the baseline) -------------------------------------------------------------


async def stored_events(client: AsyncEventStoreDBClient, order_id: str) -> list[NewEvent]:
    """The exact bytes the API stored for one order (created + items), to append again."""
    recorded = await client.get_stream(f"order-{order_id}")
    return [NewEvent(type=e.type, data=e.data, metadata=e.metadata) for e in recorded]


async def raw_appends(
    client: AsyncEventStoreDBClient, template: Sequence[NewEvent], concurrency: int, seconds: float
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

    elapsed = await run_for(seconds, concurrency, worker)
    return Sample(len(latencies), elapsed, latencies, 0)


# --- the run --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port: int = listener.getsockname()[1]
        return port


async def serve_api(eventstore_uri: str) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    settings = ApiSettings(eventstore_uri=eventstore_uri, log_level="WARNING")
    app = create_app(settings, document_store=NoDocumentStore())  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    return server, task, f"http://127.0.0.1:{port}"


def report(rows: list[tuple[int, Sample, Sample]]) -> None:
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
    print("API/raw: commands per second through the API / raw appends per second of the same")
    print("events (1.00 would mean HTTP + validation + stream read + decision cost nothing).")


async def benchmark(eventstore_uri: str, levels: Sequence[int], seconds: float) -> None:
    server, task, base_url = await serve_api(eventstore_uri)
    raw = AsyncEventStoreDBClient(eventstore_uri)
    await raw.connect()
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    rows: list[tuple[int, Sample, Sample]] = []
    try:
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
            warm = await api_commands(client, 4, 1.0)
            print(f"warm-up: {warm.operations} commands, {warm.failures} failed", flush=True)
            last = await client.post(
                "/orders", json={"customer_id": "t", "currency": "EUR", "shipping_address": ADDRESS}
            )
            order_id = last.json()["order_id"]
            for n in range(ORDERS_EVERY - 1):
                item = {"sku": f"SKU-{n:04d}", "quantity": 1 + n % 5, "unit_price": 1250}
                await client.post(f"/orders/{order_id}/items", json=item)
            template = await stored_events(raw, order_id)
            for concurrency in levels:
                api = await api_commands(client, concurrency, seconds)
                baseline = await raw_appends(raw, template, concurrency, seconds)
                print(
                    f"concurrency {concurrency}: API {api.rate:.0f}/s, raw {baseline.rate:.0f}/s",
                    flush=True,
                )
                rows.append((concurrency, api, baseline))
    finally:
        await raw.close()
        server.should_exit = True
        await task
    report(rows)
    sizes = [len(e.data) + len(e.metadata) for e in template]
    print(f"event sizes (data + metadata bytes): {min(sizes)}..{max(sizes)}, median ", end="")
    print(f"{statistics.median(sizes):.0f}; {seconds:.0f} s per measurement")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=7.0, help="per measurement")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--eventstore-uri", help="use this server instead of an embedded one")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")]
    logging.basicConfig(level=logging.WARNING)
    if args.eventstore_uri:
        asyncio.run(benchmark(args.eventstore_uri, levels, args.seconds))
        return
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as directory:
        server = eventstore_server(Path(directory) / "events.sqlite").start()
        try:
            print(f"embedded-eventstore at {server.uri}", flush=True)
            asyncio.run(benchmark(server.uri, levels, args.seconds))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
