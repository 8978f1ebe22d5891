"""One soak run: the stack as ``make run`` starts it, mixed traffic, faults, then the proofs.

``run_soak(plan, workdir)`` returns ``Figures``: what ``benchmarks.soak`` prints and what the
soak tests assert on (``Figures.failures()`` lists every proof that did not hold).

With ``SoakPlan.projectors`` instances the projector's leases are proven too: every lease a
``kill -9``ed owner held is taken over and fed by another instance, and an instance stopped with
SIGTERM (rolling restart, end of the run) leaves no live lease owned by it. The figures show
how long each lease that changed hands went unheld and unfed (failover after a kill, handover
after a SIGTERM), the leases a stopping instance left to expire instead of giving them back,
and the share of stale reads with a token in each phase of the run (steady, a fault, its
aftermath).

A plan may leave every fault out (no kills, no rolling restarts, ``store_restarts`` off: a
steady run), pace the clients to a total of ``rate`` commands/s (``clients.Pacer``) and ask for
figures every ``window_s`` seconds of traffic (``windows``): commands/s, stale reads, answer
times, the projector's lag at each window's end and the CPU of every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from tests.e2e.traffic import projector_caught_up
from tests.soak.clients import TOKEN_WAIT_MS, Client, Pacer, run_client
from tests.soak.faults import (
    Faults,
    Takeovers,
    checkpoints,
    inject,
    leases,
    left_behind,
    schedule,
)
from tests.soak.http import ApiClient
from tests.soak.proofs import (
    Comparison,
    acknowledged_writes_lost,
    compare_with_clean_rebuild,
    final_round,
    head_position,
)
from tests.soak.record import STEADY, Record
from tests.soak.stack import LEASE_S, SoakStack
from tests.soak.windows import (
    LOAD_GENERATOR,
    CpuMeter,
    MongoOps,
    WindowFigures,
    projector_lag,
    window_lines,
)

HTTP_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 300.0
FINAL_LIVES = 4
# What a projector instance logs when it finds it no longer holds a lease it had (its renewal
# came too late: a store outage, or a process stalled past the lease), and on a takeover.
LEASE_LOG_LINES = {"lease lost": "lease lost;", "lease taken over": "lease taken over by"}


@dataclass(frozen=True)
class SoakPlan:
    seconds: float  # traffic and faults are spread over this long (a slow machine stretches it)
    clients: int = 8  # clients driving orders of their own
    hot_clients: int = 3  # clients sharing hot orders
    projector_kills: int = 5  # kill -9 at random points, besides the catch-up kill
    catch_up_events: int = 1000
    catch_up_kills: int = 1  # each: stopped while this many events pile up, killed at 1st write
    customers: int = 40
    projectors: int = 1  # projector instances sharing the projections through leases
    lease_s: float = LEASE_S  # their PROJECTOR_LEASE_S
    rolling_restarts: int = 0  # each: every instance replaced in turn (SIGTERM, new instance)
    store_restarts: bool = True  # embedded-eventstore kill -9, embedded-mongo SIGTERM and SIGKILL
    rate: float | None = None  # commands/s the clients offer in all (Pacer); None: unpaced
    window_s: float | None = None  # figures per window of this long (WindowFigures); None: none
    token_wait_ms: int = TOKEN_WAIT_MS  # how long reads with a token wait for the projector

    @property
    def faults(self) -> list[str]:
        """The faults of the run, in order (none at all in a steady run)."""
        return schedule(
            self.projector_kills, self.catch_up_kills, self.rolling_restarts, self.store_restarts
        )


@dataclass
class Figures:
    plan: SoakPlan
    record: Record = field(default_factory=Record)
    injected: Counter[str] = field(default_factory=Counter)
    catch_up_events: list[int] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    comparison: Comparison = field(default_factory=Comparison)
    final_problems: list[str] = field(default_factory=list)
    final_commands: int = 0
    rss_kb: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    unexpected_exits: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    failovers: Takeovers = field(default_factory=Takeovers)
    handovers: Takeovers = field(default_factory=Takeovers)
    leases_left: list[str] = field(default_factory=list)  # live, owned by a stopped instance
    lapsed: list[str] = field(default_factory=list)  # left to expire by a SIGTERM'd instance
    lease_log: Counter[str] = field(default_factory=Counter)
    traffic_seconds: float = 0.0
    seconds: float = 0.0
    windows: list[WindowFigures] = field(default_factory=list)
    processes: tuple[str, ...] = ()  # the stack's, as the windows' CPU columns name them

    def failures(self) -> list[str]:
        """Every proof that did not hold, with its evidence."""
        failed = []
        if self.lost:
            failed.append(f"{len(self.lost)} acknowledged writes lost: {self.lost[:5]}")
        for name, count in self.comparison.mismatched.items():
            if count:
                samples = [s for s in self.comparison.samples if s.startswith(name)]
                failed.append(f"{name}: {count} documents differ from a clean rebuild: {samples}")
        if not self.comparison.compared:
            failed.append("the read models were not compared")
        bad = {k: v for k, v in self.record.server_errors.items() if k != "503 with Retry-After"}
        if bad:
            samples = self.record.server_error_samples[:5]
            failed.append(f"5xx other than 503 with Retry-After: {bad}: {samples}")
        if self.record.dropped:
            failed.append(f"requests the API never answered: {dict(self.record.dropped)}")
        if self.record.violations:
            failed.append(
                f"{len(self.record.violations)} wrong answers: {self.record.violations[:8]}"
            )
        if self.final_problems:
            failed.append(f"the API did not recover: {self.final_problems[:5]}")
        failed += [f"process exit: {line}" for line in self.unexpected_exits]
        failed += [f"fault injection: {line}" for line in self.findings]
        kills = self.injected["projector kill -9"]
        if kills < self.plan.projector_kills:
            failed.append(f"only {kills} projector kills of {self.plan.projector_kills}")
        catch_ups = self.injected["projector kill -9 at its first catch-up write"]
        if catch_ups < self.plan.catch_up_kills:
            failed.append(f"only {catch_ups} catch-up kills of {self.plan.catch_up_kills}")
        if self.plan.catch_up_kills and (
            not self.catch_up_events or min(self.catch_up_events) < self.plan.catch_up_events
        ):
            failed.append(f"catch-up kill behind {self.catch_up_events} events")
        if self.plan.projector_kills and not self.failovers.acquired:
            failed.append("no projector kill -9 hit an instance holding a lease")
        rolling = self.injected["rolling restart"]
        if rolling < self.plan.rolling_restarts:
            failed.append(f"only {rolling} rolling restarts of {self.plan.rolling_restarts}")
        if self.plan.rolling_restarts and not self.handovers.acquired:
            failed.append("no lease changed hands in the rolling restarts")
        if self.leases_left:
            failed.append(f"live leases still owned by stopped instances: {self.leases_left}")
        return failed

    def lines(self) -> list[str]:
        record = self.record
        rate = len(record.acks) / self.traffic_seconds if self.traffic_seconds else 0.0
        out = [
            f"duration: {self.seconds:.0f} s (traffic planned {self.plan.seconds:.0f} s, ran "
            f"{self.traffic_seconds:.0f} s, {self.plan.clients} + {self.plan.hot_clients} hot "
            f"clients, {f'paced to {self.plan.rate:g} commands/s' if self.plan.rate else 'unpaced'}"
            ")",
            f"commands acknowledged: {len(record.acks)} ({rate:.1f}/s over the traffic; + "
            f"{self.final_commands} in the final round), events acknowledged: "
            f"{record.events_acknowledged}",
            f"retries (503 + Retry-After or no answer, same Idempotency-Key): {record.retries}",
            f"requests without an answer: {sum(record.dropped.values())} {dict(record.dropped)}",
            f"reads with a token (wait_ms={self.plan.token_wait_ms}): "
            f"{_stale(*record.stale_share())}",
            *window_lines(self.windows, self.processes),
            *(
                f"  {phase} ({record.phase_seconds[phase]:.0f} s): "
                f"{_stale(*record.stale_share(phase))}"
                for phase in sorted(record.phase_seconds, key=lambda p: (p != STEADY, p))
            ),
            "faults injected: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.injected.items())),
            f"catch-up kill: {self.catch_up_events} events behind",
            f"projector instances: {self.plan.projectors}, PROJECTOR_LEASE_S "
            f"{self.plan.lease_s:g}; {self.plan.rolling_restarts} rolling restarts planned",
            "failover after a kill -9 of an owner, until another instance "
            f"{_takeovers(self.failovers)}",
            "handover after a SIGTERM of an owner, until another instance "
            f"{_takeovers(self.handovers)}",
            "projector logs: "
            + ", ".join(f"{label}: {self.lease_log[label]}" for label in LEASE_LOG_LINES),
            f"leases a SIGTERM'd instance left to expire instead of giving back: "
            f"{len(self.lapsed)} {self.lapsed[:6]}",
            f"acknowledged writes lost: {len(self.lost)}",
        ]
        for name, compared in self.comparison.compared.items():
            mismatched = self.comparison.mismatched[name]
            out.append(f"{name}: {compared} documents compared, {mismatched} mismatched")
        out.append(
            "5xx: " + (", ".join(f"{k}: {v}" for k, v in record.server_errors.items()) or "none")
        )
        out.append(f"4xx/expected answers: {self._non_2xx()}")
        for name, (start, end) in self.rss_kb.items():
            out.append(
                f"RSS {name}: {_mb(start)} -> {_mb(end)} MB ({self.restarts.get(name, 1)} starts)"
            )
        out.append(f"final round: {'ok' if not self.final_problems else self.final_problems[:3]}")
        failures = self.failures()
        out.append(f"proofs: {'all hold' if not failures else f'{len(failures)} failed'}")
        out += [f"  FAILED: {line}" for line in failures]
        return out

    def _non_2xx(self) -> str:
        codes = {k: v for k, v in self.record.statuses.items() if not k.split()[-1].startswith("2")}
        return ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())) or "none"


def _mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:.0f}"


def _stale(stale: int, reads: int) -> str:
    return f"{stale}/{reads} stale ({100 * stale / reads:.0f} %)" if reads else "none"


def _spread(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    return (
        f"{len(seconds)} leases, p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"
    )


def _takeovers(takeovers: Takeovers) -> str:
    """How long the leases that changed hands went unheld and unfed."""
    return (
        f"acquired the lease: {_spread(takeovers.acquired)}; fed the projection (first "
        f"checkpoint save): {_spread(takeovers.fed)}"
    )


def _count_lease_lines(stack: SoakStack) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in stack.projector_logs():
        text = path.read_text(errors="replace")
        for label, line in LEASE_LOG_LINES.items():
            counts[label] += text.count(line)
    return counts


async def _stop_projectors(
    stack: SoakStack, documents: MotorDocumentStore
) -> tuple[list[str], list[str]]:
    """SIGTERM every instance at once; the leases they still own afterwards: (live, expired)."""
    running = [managed for managed in stack.projectors if managed.running()]
    ids = [managed.instance_id for managed in running]
    await asyncio.gather(
        *(asyncio.to_thread(managed.signal, signal.SIGTERM) for managed in running)
    )
    found = await leases(documents)
    if found is None:
        return ["the leases were not readable"], []
    live: list[str] = []
    lapsed: list[str] = []
    for instance_id in ids:
        owned, expired = left_behind(found, instance_id)
        live += owned
        lapsed += expired
    return live, lapsed


async def run_soak(plan: SoakPlan, workdir: Path) -> Figures:
    """Start the stack, drive traffic under faults, prove; the stack is gone afterwards."""
    started = time.monotonic()
    figures = Figures(plan)
    stack = SoakStack(workdir / "data", workdir / "logs", plan.projectors, plan.lease_s)
    figures.processes = stack.order
    documents = MotorDocumentStore(stack.mongo_uri, stack.database)
    events = EsdbEventStore(stack.eventstore_uri)
    try:
        await stack.start()
        connections = plan.clients + plan.hot_clients + FINAL_LIVES + 2
        async with ApiClient(
            stack.api_url, timeout=HTTP_TIMEOUT_S, max_connections=connections
        ) as api:
            await projector_caught_up(api)
            stack.record_rss_start()  # every process has served by now
            faults = Faults(stack, documents, figures.record)
            if plan.window_s:
                await events.connect()
            figures.traffic_seconds = await _traffic_under_faults(
                api, plan, faults, events, figures.windows
            )
            faults.revive_projectors()
            final, figures.final_problems = await final_round(api, FINAL_LIVES)
            figures.final_commands = len(final.acks)
        stack.record_rss_end()
        if not plan.window_s:
            await events.connect()
        head = await head_position(events)

        async def caught_up() -> bool:
            return min((await checkpoints(documents)).values()) >= head

        await faults.wait(f"the projector to reach position {head}", CATCH_UP_TIMEOUT_S, caught_up)
        figures.lost = await acknowledged_writes_lost(events, figures.record.acks + final.acks)
        figures.comparison = await compare_with_clean_rebuild(stack, documents, head)
        figures.injected, figures.catch_up_events = faults.injected, faults.catch_up_events
        figures.failovers, figures.handovers = faults.failovers, faults.handovers
        figures.findings = faults.findings
        figures.leases_left, lapsed = await _stop_projectors(stack, documents)
        figures.lapsed = faults.lapsed + lapsed
        await asyncio.to_thread(stack.stop)
    finally:
        stack.kill_all()
        await events.close()
        await documents.close()
        figures.unexpected_exits = stack.unexpected_exits()
        figures.lease_log = _count_lease_lines(stack)
        for name in stack.order:
            managed = stack[name]
            figures.rss_kb[name] = (managed.rss_start_kb, managed.rss_end_kb)
            figures.restarts[name] = managed.starts
        figures.seconds = time.monotonic() - started
    return figures


async def _traffic_under_faults(
    api: ApiClient,
    plan: SoakPlan,
    faults: Faults,
    events: EsdbEventStore,
    windows: list[WindowFigures],
) -> float:
    """Clients and faults for the planned time (longer if the faults take longer): how long the
    traffic ran. With ``plan.window_s``, the figures of each window go to ``windows``."""
    run_id = uuid.uuid4().hex[:8]
    customers = [f"soak-{run_id}-{n}" for n in range(plan.customers)]
    record = faults.record
    pacer = Pacer(plan.rate) if plan.rate else None
    clients = [
        Client(
            api,
            record,
            customers,
            number,
            random.Random(f"{run_id}-{number}"),
            pacer,
            plan.token_wait_ms,
        )
        for number in range(plan.clients + plan.hot_clients)
    ]
    record.take_window()  # the first window starts with the traffic
    tasks = [
        asyncio.create_task(run_client(c, hot=c.number >= plan.clients, run_id=run_id))
        for c in clients
    ]
    started = time.monotonic()
    sampler = _Sampler(faults, events, windows, MongoOps(faults.stack.mongo_uri))
    sampling = asyncio.create_task(sampler.every(plan.window_s)) if plan.window_s else None
    try:
        await inject(faults, plan.faults, plan.seconds * 0.85, plan.catch_up_events)
        # Traffic goes on for the rest of the planned time (the last faults' aftermath).
        await asyncio.sleep(max(0.0, started + plan.seconds - time.monotonic()))
    finally:
        faults.stop_watching()
        if sampling is not None:
            sampler.done.set()
            await asyncio.gather(sampling, return_exceptions=True)
            sampler.mongo_ops.close()
        record.enter(None)
        record.stopped = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            record.violation(f"a client failed: {type(result).__name__}: {result}")
    return time.monotonic() - started


MIN_LAST_WINDOW = 0.25  # a last, shorter window is reported if at least this share of one


@dataclass
class _Sampler:
    """Ends a window every ``window_s`` seconds of traffic and records its ``WindowFigures``."""

    faults: Faults
    events: EsdbEventStore
    windows: list[WindowFigures]
    mongo_ops: MongoOps
    cpu: CpuMeter = field(default_factory=CpuMeter)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the traffic is over
    window_s: float = 0.0

    def pids(self) -> dict[str, int]:
        stack = self.faults.stack
        running = {name: stack[name].pid for name in stack.order if stack[name].running()}
        return running | {LOAD_GENERATOR: os.getpid()}

    async def every(self, window_s: float) -> None:
        self.window_s = window_s
        self.cpu.sample(self.pids(), 0.0)  # the baselines of the first window
        await self.mongo_ops.sample(0.0)
        ends = time.monotonic()
        while not self.done.is_set():
            ends += window_s
            with contextlib.suppress(TimeoutError):  # the window's end, or the traffic's
                await asyncio.wait_for(self.done.wait(), max(0.0, ends - time.monotonic()))
            await self.window_ended(last=self.done.is_set())

    async def window_ended(self, *, last: bool = False) -> None:
        record = self.faults.record
        if last and time.monotonic() - record.window.started < MIN_LAST_WINDOW * self.window_s:
            return
        window, now = record.take_window(), time.monotonic()
        cpu = self.cpu.sample(self.pids(), now - window.started)
        ops = await self.mongo_ops.sample(now - window.started)
        lag = await projector_lag(self.faults.documents, self.events)
        self.windows.append(WindowFigures.of(window, now, lag, cpu, os.getloadavg(), ops))
