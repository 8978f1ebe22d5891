"""Visibility lag: how long after a command answers until a query shows its change.

Run from the repository root (about a minute and a half):

    .venv/bin/python -m benchmarks.visibility_lag [--rates 5,20,50] [--seconds 15] [--api-url URL]

It starts the whole stack the way ``make run`` does (``scripts/run-stack``: embedded servers,
API and projector as separate processes; real servers when ``EVENTSTORE_URI`` / ``MONGO_URI``
are set), unless ``--api-url`` names a running API. Then, at each rate in turn on the same
stack, it sends commands at a steady rate (open loop: a command is sent on schedule whether or
not earlier ones have answered), half of them creating an order, half adding an item to an
order no other command is touching. Every command is measured one of two ways, alternately:

- polling: from the command's answer, ``GET /orders/{id}`` without a token, back to back, until
  the order's ``version`` reaches the command's; the lag is the time until that answer;
- token: from the command's answer, one ``GET /orders/{id}`` with ``X-Consistency-Token``; the
  lag is that request's latency (the read side waits for the projector, then reads).

The baseline, in the same run at the same rate and under the same load, is a plain GET of the
order once it is visible: what a read costs when there is nothing to wait for. The ratios say
what waiting for the projector adds. Every figure includes HTTP on loopback. Beside them: token
answers that came back stale (the read model missed the token within ``--wait-ms``), MongoDB
commands per command sent (``opcounters.command`` of ``serverStatus``, every process's: one per
round trip on embedded-mongo, which also counts finds and writes there, unlike MongoDB) and the
projector's events per batch (its ``/metrics``), when the stack is this benchmark's own or
``--mongo-uri`` / ``--metrics-url`` name them; and the load average, since other work on the
machine skews every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pymongo

from tests.e2e.stack import Stack
from tests.e2e.traffic import new_order_body

WARMUP_S = 2.0


@dataclass
class Samples:
    commands: list[float] = field(default_factory=list)
    polled: list[float] = field(default_factory=list)
    token: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    sent: int = 0
    polls: int = 0
    stale: int = 0
    sent_s: float = 0.0  # when the last command was sent, from the first
    done_s: float = 0.0  # when the last measurement finished
    errors: list[str] = field(default_factory=list)
    mongo_commands: float | None = None  # MongoDB commands while measuring (all processes)
    batches: float | None = None  # the projector's batches while measuring
    events: float | None = None  # and the events they held
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after


def percentile(values: list[float], fraction: float) -> float:
    """Milliseconds; nearest-rank on the sorted samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


class Workload:
    """Commands on schedule; each measured by polling or by token (alternately)."""

    def __init__(self, api: httpx.AsyncClient, wait_ms: int) -> None:
        self.api = api
        self.wait_ms = wait_ms
        self.idle: list[tuple[str, int]] = []  # orders with no command in flight: (id, version)
        self.customer = f"bench-{uuid.uuid4().hex[:12]}"

    async def run(self, rate: float, seconds: float, samples: Samples) -> None:
        """Send ``rate * seconds`` commands on schedule and measure each."""
        started = time.perf_counter()
        tasks = []
        for number in range(round(rate * seconds)):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.command(number, samples)))
        samples.sent_s = time.perf_counter() - started
        await asyncio.gather(*tasks)
        samples.done_s = time.perf_counter() - started

    async def command(self, number: int, samples: Samples) -> None:
        samples.sent += 1
        try:
            await self._command(number, samples)
        except httpx.HTTPError as error:  # counted, not fatal: the other commands go on
            samples.errors.append(f"{type(error).__name__}: {error}")

    async def _command(self, number: int, samples: Samples) -> None:
        create = number % 4 < 2 or not self.idle
        if create:
            sku = f"SKU-{uuid.uuid4().hex[:12]}"
            request = self.api.build_request(
                "POST", "/orders", json=new_order_body(self.customer, sku, 1, 990)
            )
        else:
            order_id, _ = self.idle.pop()
            item = {"sku": f"SKU-{uuid.uuid4().hex[:12]}", "quantity": 2, "unit_price": 450}
            request = self.api.build_request("POST", f"/orders/{order_id}/items", json=item)
        sent = time.perf_counter()
        response = await self.api.send(request)
        answered = time.perf_counter()
        if not response.is_success:
            samples.errors.append(f"{request.url.path}: {response.status_code} {response.text}")
            return
        samples.commands.append(answered - sent)
        body = response.json()
        order_id, version, token = body["order_id"], body["version"], body["position"]
        if number % 2:
            await self.read_with_token(order_id, version, token, answered, samples)
        else:
            await self.poll_until_visible(order_id, version, answered, samples)
        begun = time.perf_counter()
        plain = await self.api.get(f"/orders/{order_id}")
        samples.plain.append(time.perf_counter() - begun)
        if plain.status_code != 200 or plain.json()["version"] < version:
            samples.errors.append(f"plain GET of a visible order: {plain.status_code}")
        self.idle.append((order_id, version))

    async def read_with_token(
        self, order_id: str, version: int, token: int, answered: float, samples: Samples
    ) -> None:
        response = await self.api.get(
            f"/orders/{order_id}",
            params={"wait_ms": self.wait_ms},
            headers={"X-Consistency-Token": str(token)},
        )
        samples.token.append(time.perf_counter() - answered)
        if response.headers.get("X-Read-Model-Stale") != "false":
            samples.stale += 1
        elif response.status_code != 200 or response.json()["version"] < version:
            samples.errors.append(f"token GET: {response.status_code} {response.text[:200]}")

    async def poll_until_visible(
        self, order_id: str, version: int, answered: float, samples: Samples
    ) -> None:
        deadline = answered + self.wait_ms / 1000
        while time.perf_counter() < deadline:
            response = await self.api.get(f"/orders/{order_id}")
            samples.polls += 1
            if response.status_code == 200 and response.json()["version"] >= version:
                samples.polled.append(time.perf_counter() - answered)
                return
            if response.status_code not in (200, 404):
                samples.errors.append(f"polling GET: {response.status_code}")
                return
        samples.errors.append(f"order {order_id} v{version} not visible in {self.wait_ms} ms")


@dataclass(frozen=True)
class Target:
    """The API to measure, and where to read MongoDB's and the projector's counters (if known)."""

    api_url: str
    mongo_uri: str | None = None
    metrics_url: str | None = None


@contextlib.asynccontextmanager
async def running_stack(args: argparse.Namespace) -> AsyncIterator[Target]:
    """The given API, or a stack started like ``make run`` (stopped after)."""
    if args.api_url:
        yield Target(args.api_url, args.mongo_uri, args.metrics_url)
        return
    with tempfile.TemporaryDirectory(prefix="visibility-lag-") as directory:
        stack = Stack.configure(Path(directory) / "data", Path(directory) / "stack.log")
        stack.start()
        try:
            await stack.wait_ready()
            print(f"stack ready: {', '.join(stack.embedded) or 'no'} embedded servers", flush=True)
            metrics = f"http://127.0.0.1:{stack.env['PROJECTOR_METRICS_PORT']}/metrics"
            yield Target(stack.api_url, stack.client_env["MONGO_URI"], metrics)
            stack.interrupt()
        except BaseException:
            print(stack.output()[-5000:], file=sys.stderr)
            raise
        finally:
            stack.kill()


class Counters:
    """MongoDB's command count and the projector's batch and event counts, where known."""

    def __init__(self, target: Target, api: httpx.AsyncClient) -> None:
        self._api = api
        self._metrics_url = target.metrics_url
        self._mongo: pymongo.MongoClient[dict[str, object]] | None = (
            pymongo.MongoClient(target.mongo_uri, serverSelectionTimeoutMS=2000)
            if target.mongo_uri
            else None
        )

    def close(self) -> None:
        if self._mongo is not None:
            self._mongo.close()

    async def read(self) -> tuple[float | None, float | None, float | None]:
        """(MongoDB commands, projector batches, projector events) so far."""
        return (await self._mongo_commands(), *await self._projector())

    async def _mongo_commands(self) -> float | None:
        if self._mongo is None:
            return None
        mongo = self._mongo
        try:
            status = await asyncio.to_thread(lambda: mongo.admin.command("serverStatus"))
        except pymongo.errors.PyMongoError:
            return None
        commands = (status.get("opcounters") or {}).get("command")
        return float(commands) if isinstance(commands, int) else None

    async def _projector(self) -> tuple[float | None, float | None]:
        if not self._metrics_url:
            return None, None
        try:
            text = (await self._api.get(self._metrics_url)).text
        except httpx.HTTPError:
            return None, None
        return _sample(text, "projector_batches_total"), _sample(text, "projector_events_total")


def _sample(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def _delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def ratio(values: list[float], baseline: list[float], fraction: float) -> float:
    return percentile(values, fraction) / percentile(baseline, fraction)


def report(samples: Samples, rate: float, seconds: float) -> None:
    sent = samples.sent
    print(
        f"\n{sent} commands at {rate:g}/s for {seconds:g} s (last sent at {samples.sent_s:.1f} s, "
        f"last measured at {samples.done_s:.1f} s); "
        f"{len(samples.polled)} measured by polling, {len(samples.token)} by token; "
        f"load average {samples.load[0]:.1f} -> {samples.load[1]:.1f}"
    )
    # Little's law: a median command slower than 10 arrival intervals means >= 10 in flight.
    if samples.sent_s > seconds * 1.1 or percentile(samples.commands, 0.5) > 10_000 / rate:
        print(
            "SATURATED: commands queue up (the stack, or this machine, cannot sustain the rate), "
            "so the figures below are mostly queueing; try a lower --rate"
        )
    rows = [
        ("command (POST, for reference)", samples.commands),
        ("visible to polling GETs (no token)", samples.polled),
        ("GET with X-Consistency-Token", samples.token),
        ("baseline: GET of a visible order", samples.plain),
    ]
    print(f"{'':38} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
    for name, values in rows:
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"{name:38} {p50:8.1f} {p99:8.1f} {len(values):6d}")
    for name, values in (("polling lag", samples.polled), ("token GET", samples.token)):
        p50, p99 = ratio(values, samples.plain, 0.5), ratio(values, samples.plain, 0.99)
        print(f"{name} / baseline: p50 {p50:.1f}x, p99 {p99:.1f}x")
    polls = samples.polls / len(samples.polled) if samples.polled else float("nan")
    print(f"polling GETs per visible change: {polls:.1f}")
    if samples.mongo_commands is not None:
        per_command = samples.mongo_commands / sent
        print(f"MongoDB commands per command sent (all processes): {per_command:.1f}")
    if samples.batches and samples.events is not None:
        print(
            f"projector: {samples.batches:.0f} batches, "
            f"{samples.events / samples.batches:.1f} events per batch"
        )
    print(f"stale token answers: {samples.stale}; errors: {len(samples.errors)}")
    for error in samples.errors[:10]:
        print(f"  {error}")


def summary(runs: list[tuple[float, Samples]]) -> None:
    """One line per rate: each lag next to the plain-GET baseline of the same run."""
    print("\nsummary (ms; x = multiple of the baseline GET of the same run at the same rate)")
    print(
        f"{'rate/s':>6}  {'baseline p50/p99':>17}  {'polling p50 (x)':>16}  {'polling p99 (x)':>16}"
        f"  {'token p50 (x)':>15}  {'token p99 (x)':>15}  {'stale':>5}  {'load':>9}"
    )
    for rate, s in runs:

        def cell(values: list[float], fraction: float, s: Samples = s) -> str:
            return f"{percentile(values, fraction):.0f} ({ratio(values, s.plain, fraction):.1f}x)"

        base = f"{percentile(s.plain, 0.5):.0f}/{percentile(s.plain, 0.99):.0f}"
        print(
            f"{rate:6g}  {base:>17}  {cell(s.polled, 0.5):>16}  {cell(s.polled, 0.99):>16}"
            f"  {cell(s.token, 0.5):>15}  {cell(s.token, 0.99):>15}  {s.stale:5d}"
            f"  {s.load[0]:4.1f}-{s.load[1]:<4.1f}"
        )


async def measure(workload: Workload, counters: Counters, rate: float, seconds: float) -> Samples:
    """Warm up at ``rate``, then measure ``seconds`` of it."""
    await workload.run(rate, WARMUP_S, Samples())  # connections, first batches, this rate
    samples = Samples()
    before = await counters.read()
    load = os.getloadavg()[0]
    await workload.run(rate, seconds, samples)
    after = await counters.read()
    samples.load = (load, os.getloadavg()[0])
    samples.mongo_commands, samples.batches, samples.events = (
        _delta(b, a) for b, a in zip(before, after, strict=True)
    )
    return samples


async def main(args: argparse.Namespace) -> int:
    runs: list[tuple[float, Samples]] = []
    async with (
        running_stack(args) as target,
        httpx.AsyncClient(
            base_url=target.api_url,
            timeout=30.0,
            # Idle connections go before the API closes them (API_KEEPALIVE_TIMEOUT_S, 5 s):
            # a request sent on one the server is closing fails with a ReadError.
            limits=httpx.Limits(keepalive_expiry=2.0),
        ) as api,
    ):
        counters = Counters(target, api)
        try:
            workload = Workload(api, args.wait_ms)
            for rate in args.rates:
                samples = await measure(workload, counters, rate, args.seconds)
                report(samples, rate, args.seconds)
                runs.append((rate, samples))
        finally:
            counters.close()
    summary(runs)
    return 1 if any(s.errors or s.stale for _, s in runs) else 0


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"positive rates separated by commas, got {text!r}")
    return rates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        "--rate",
        type=_rates,
        default=[5.0, 20.0, 50.0],
        help="commands per second, one run each on the same stack (default 5,20,50)",
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to send, per rate")
    parser.add_argument("--wait-ms", type=int, default=10_000, help="token wait / polling bound")
    parser.add_argument("--api-url", help="measure a running API instead of starting a stack")
    parser.add_argument("--mongo-uri", help="with --api-url: its MongoDB, to count commands")
    parser.add_argument("--metrics-url", help="with --api-url: the projector's /metrics")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
