"""Visibility lag: how long after a command answers until a query shows its change.

Run from the repository root (about a minute):

    .venv/bin/python -m benchmarks.visibility_lag [--rate 20] [--seconds 20] [--api-url URL]

It starts the whole stack the way ``make run`` does (``scripts/run-stack``: embedded servers,
API and projector as separate processes; real servers when ``EVENTSTORE_URI`` / ``MONGO_URI``
are set), unless ``--api-url`` names a running API. It then sends commands at a steady rate
(open loop: a command is sent on schedule whether or not earlier ones have answered), half of
them creating an order, half adding an item to an order no other command is touching. Every
command is measured one of two ways, alternately:

- polling: from the command's answer, ``GET /orders/{id}`` without a token, back to back, until
  the order's ``version`` reaches the command's; the lag is the time until that answer;
- token: from the command's answer, one ``GET /orders/{id}`` with ``X-Consistency-Token``; the
  lag is that request's latency (the read side waits for the projector, then reads).

The baseline, in the same run and under the same load, is a plain GET of the order once it is
visible: what a read costs when there is nothing to wait for. The ratios say what waiting for
the projector adds. Every figure includes HTTP on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.stack import Stack
from tests.e2e.traffic import new_order_body

WARMUP_S = 2.0


@dataclass
class Samples:
    commands: list[float] = field(default_factory=list)
    polled: list[float] = field(default_factory=list)
    token: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    polls: int = 0
    stale: int = 0
    sent_s: float = 0.0  # when the last command was sent, from the first
    done_s: float = 0.0  # when the last measurement finished
    errors: list[str] = field(default_factory=list)


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


@contextlib.asynccontextmanager
async def running_stack(api_url: str | None) -> AsyncIterator[str]:
    """The API's URL: the given one, or a stack started like ``make run`` (stopped after)."""
    if api_url:
        yield api_url
        return
    with tempfile.TemporaryDirectory(prefix="visibility-lag-") as directory:
        stack = Stack.configure(Path(directory) / "data", Path(directory) / "stack.log")
        stack.start()
        try:
            await stack.wait_ready()
            print(f"stack ready: {', '.join(stack.embedded) or 'no'} embedded servers", flush=True)
            yield stack.api_url
            stack.interrupt()
        except BaseException:
            print(stack.output()[-5000:], file=sys.stderr)
            raise
        finally:
            stack.kill()


def report(samples: Samples, rate: float, seconds: float) -> None:
    sent = len(samples.commands) + len(samples.errors)
    print(
        f"\n{sent} commands at {rate:g}/s for {seconds:g} s (last sent at {samples.sent_s:.1f} s, "
        f"last measured at {samples.done_s:.1f} s); "
        f"{len(samples.polled)} measured by polling, {len(samples.token)} by token"
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
    base50, base99 = percentile(samples.plain, 0.5), percentile(samples.plain, 0.99)
    for name, values in (("polling lag", samples.polled), ("token GET", samples.token)):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"{name} / baseline: p50 {p50 / base50:.1f}x, p99 {p99 / base99:.1f}x")
    polls = samples.polls / len(samples.polled) if samples.polled else float("nan")
    print(f"polling GETs per visible change: {polls:.1f}")
    print(f"stale token answers: {samples.stale}; errors: {len(samples.errors)}")
    for error in samples.errors[:10]:
        print(f"  {error}")


async def main(args: argparse.Namespace) -> int:
    async with (
        running_stack(args.api_url) as api_url,
        httpx.AsyncClient(base_url=api_url, timeout=30.0) as api,
    ):
        workload = Workload(api, args.wait_ms)
        await workload.run(args.rate, WARMUP_S, Samples())  # connections, first batches
        samples = Samples()
        await workload.run(args.rate, args.seconds, samples)
    report(samples, args.rate, args.seconds)
    return 1 if samples.errors or samples.stale else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="commands per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--wait-ms", type=int, default=10_000, help="token wait / polling bound")
    parser.add_argument("--api-url", help="measure a running API instead of starting a stack")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
