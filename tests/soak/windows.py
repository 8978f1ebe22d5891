"""Figures per window of a soak run: what the clients got and what it cost, every ``window_s``.

For each window (``Record.take_window`` ends one) ``WindowFigures`` holds the commands
acknowledged a second, the reads with a token answered stale, the answer times of those reads
and of commands (p50 / p99), the projector's lag at the window's end (the most behind
projection: its events not yet applied, counted by ``projector.status`` from the MongoDB
checkpoints and the event store, and how old the oldest of them is), the CPU each process of
the stack and the load generator (this process) used, in % of one core (``/proc/<pid>/stat``:
utime + stime), how long each process's threads were ready to run but waited for a core
(``/proc/<pid>/task/*/schedstat``, in % of the window: a process starved by the others on the
machine, rather than busy or idle), the whole machine's CPU (``/proc/stat``; the machine is
shared, so what is not ours is someone else's), the load averages, and the operations
embedded-mongo served a second by kind (its ``serverStatus`` opcounters, as mongoeco counts
them: queries are the API's reads, its token waits' checkpoint polls and the projector's reads;
updates mostly the projector's writes).

``lag_trend`` tells a projector that keeps up (its lag bounded) from one falling behind for
good (its lag growing window over window).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import PyMongoError

from projector.status import projection_statuses
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStoreReader
from tests.soak.record import COMMAND, PLAIN_GET, TOKEN_GET, Window

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load generator"  # this process: the clients, and the harness around them
MACHINE = "machine"  # every core, everyone's work
STALE_LIMIT = 0.01  # stale answers a projector that keeps up leaves, at most (issue 9)
LAG_FLOOR_EVENTS = 100  # a lag growing by less than this over a run is noise (a batch or two)
LAG_COUNT_LIMIT = 1000  # events counted exactly per projection; beyond, extrapolated
MONGO_OPS = ("query", "update", "insert", "getmore", "command")  # opcounters shown
OPCOUNTERS_TIMEOUT_MS = 5000


def process_ticks(stat: str) -> int:
    """utime + stime of a ``/proc/<pid>/stat`` line, in clock ticks (every thread's)."""
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def machine_ticks(stat: str) -> tuple[int, int]:
    """(busy, all) clock ticks of every core from ``/proc/stat``'s ``cpu`` line."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            ticks = [int(value) for value in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle, iowait
            total = sum(ticks[:8])  # guest time is already in user and nice
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def schedstat_wait_ns(schedstat: str) -> int:
    """Nanoseconds a thread waited on a run queue, from its ``schedstat`` (on-CPU time, run
    queue wait, time slices)."""
    return int(schedstat.split()[1])


def _read_wait_ns(pid: int) -> int | None:
    """Run queue wait of every live thread of ``pid``, summed."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    waited = 0
    for task in tasks:
        try:
            waited += schedstat_wait_ns((task / "schedstat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return waited


def _read_ticks(pid: int) -> int | None:
    try:
        return process_ticks(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class CpuMeter:
    """CPU per process between two ``sample`` calls, in % of one core, and the time its threads
    waited for a core, in % of the time between the samples."""

    last: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> pid, ticks, ns
    machine_last: tuple[int, int] | None = None

    def sample(
        self, pids: Mapping[str, int], seconds: float
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Each named process's CPU since the last sample (a new pid counts from its start) and
        the machine's (busy over all cores, in % of one core too); each process's run queue
        wait."""
        shares: dict[str, float] = {}
        waits: dict[str, float] = {}
        for name, pid in pids.items():
            ticks, waited = _read_ticks(pid), _read_wait_ns(pid)
            if ticks is None or waited is None:
                continue
            before_pid, before, waited_before = self.last.get(name, (pid, 0, 0))
            if before_pid != pid:
                before, waited_before = 0, 0
            self.last[name] = (pid, ticks, waited)
            if seconds > 0:
                shares[name] = 100.0 * (ticks - before) / CLOCK_TICKS / seconds
                # Threads that ended took their wait with them: never below nothing.
                waits[name] = max(0.0, 100.0 * (waited - waited_before) / 1e9 / seconds)
        busy, total = machine_ticks(Path("/proc/stat").read_text())
        if self.machine_last is not None and total > self.machine_last[1]:
            cores = os.cpu_count() or 1
            share = (busy - self.machine_last[0]) / (total - self.machine_last[1])
            shares[MACHINE] = 100.0 * cores * share
        self.machine_last = (busy, total)
        return shares, waits


def percentiles(values: Sequence[float]) -> tuple[float, float] | None:
    """(p50, p99) of ``values`` (nearest rank), None when there are none."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return rank(0.50), rank(0.99)


@dataclass
class MongoOps:
    """embedded-mongo's opcounters (``serverStatus``) a second between two ``sample`` calls."""

    uri: str
    timeout_ms: int = OPCOUNTERS_TIMEOUT_MS  # to find the server
    last: dict[str, int] | None = None
    client: AsyncIOMotorClient | None = None  # type: ignore[type-arg]

    async def sample(self, seconds: float) -> dict[str, float]:
        """Operations a second by kind since the last sample (none the first time, or while
        MongoDB does not answer)."""
        if self.client is None:
            self.client = AsyncIOMotorClient(self.uri, serverSelectionTimeoutMS=self.timeout_ms)
        try:
            status = await self.client.admin.command("serverStatus")
        except PyMongoError:  # a store outage or restart: no figure for this window
            self.last = None
            return {}
        counters = {kind: int(status.get("opcounters", {}).get(kind, 0)) for kind in MONGO_OPS}
        before, self.last = self.last, counters
        if before is None or seconds <= 0:
            return {}
        return {kind: max(0, counters[kind] - before[kind]) / seconds for kind in MONGO_OPS}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@dataclass(frozen=True)
class Lag:
    """The most behind projection at one moment: events not yet applied, and the age of the
    oldest of them (0 when none)."""

    events: int
    exact: bool
    seconds: float | None

    def __str__(self) -> str:
        age = "?" if self.seconds is None else f"{self.seconds:.1f} s"
        return f"{self.events}{'' if self.exact else '~'} ev / {age}"


async def projector_lag(documents: DocumentStore, events: EventStoreReader) -> Lag | None:
    """The lag of the most behind projection (``projector.status``); None while a store is
    unavailable."""
    try:
        statuses = await projection_statuses(documents, events, count_limit=LAG_COUNT_LIMIT)
    except StoreUnavailable:
        return None
    if any(status.lag_events is None for status in statuses):
        return None
    worst = max(statuses, key=lambda status: (status.lag_events or 0, status.lag_seconds or 0))
    return Lag(worst.lag_events or 0, worst.lag_events_exact, worst.lag_seconds)


@dataclass(frozen=True)
class WindowFigures:
    seconds: float
    commands: int
    queries: int  # answered, with a token or without
    stale: int
    token_reads: int
    token_get_s: tuple[float, float] | None  # p50, p99
    plain_get_s: tuple[float, float] | None
    command_s: tuple[float, float] | None
    lag: Lag | None  # at the window's end
    cpu: dict[str, float]  # % of one core, by process name, LOAD_GENERATOR and MACHINE
    cpu_wait: dict[str, float]  # % of the window waiting for a core, by process name
    load: tuple[float, float, float]
    mongo_ops: dict[str, float] = field(default_factory=dict)  # a second, by kind (MONGO_OPS)

    @classmethod
    def of(
        cls,
        window: Window,
        ended: float,
        lag: Lag | None,
        cpu: tuple[dict[str, float], dict[str, float]],
        load: tuple[float, float, float],
        mongo_ops: dict[str, float],
    ) -> WindowFigures:
        return cls(
            seconds=ended - window.started,
            commands=window.acks,
            queries=sum(len(window.seconds.get(kind, [])) for kind in (TOKEN_GET, PLAIN_GET)),
            stale=window.token_reads["stale"],
            token_reads=window.token_reads["stale"] + window.token_reads["fresh"],
            token_get_s=percentiles(window.seconds.get(TOKEN_GET, [])),
            plain_get_s=percentiles(window.seconds.get(PLAIN_GET, [])),
            command_s=percentiles(window.seconds.get(COMMAND, [])),
            lag=lag,
            cpu=cpu[0],
            cpu_wait=cpu[1],
            load=load,
            mongo_ops=mongo_ops,
        )

    @property
    def rate(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0

    @property
    def query_rate(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0

    @property
    def stale_share(self) -> float:
        return self.stale / self.token_reads if self.token_reads else 0.0


def lag_trend(lags: Sequence[Lag | None]) -> str:
    """``growing`` when the lag rose in every window, by more than ``LAG_FLOOR_EVENTS`` in all
    (the projector falls behind for good), ``bounded`` otherwise, ``unknown`` without two lags
    read."""
    known = [lag.events for lag in lags if lag is not None]
    if len(known) < 2:
        return "unknown"
    rising = all(later > earlier for earlier, later in pairwise(known))
    return "growing" if rising and known[-1] - known[0] > LAG_FLOOR_EVENTS else "bounded"


def keeps_up(windows: Sequence[WindowFigures]) -> bool:
    """The projector kept up: its lag bounded and under ``STALE_LIMIT`` stale answers in every
    window."""
    return (
        bool(windows)
        and lag_trend([w.lag for w in windows]) == "bounded"
        and all(w.stale_share < STALE_LIMIT for w in windows)
    )


def _ms(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0] * 1000:.0f} / {pair[1] * 1000:.0f}"


def window_lines(windows: Sequence[WindowFigures], processes: Sequence[str]) -> list[str]:
    """A table of ``windows`` (CPU columns: ``processes`` and the load generator, each with its
    wait for a core, everyone else on the machine, the machine), then the verdict."""
    if not windows:
        return []
    names = [*processes, LOAD_GENERATOR]
    header = (
        "window | commands/s | queries/s | stale token reads | token GET p50 / p99 ms"
        " | GET without token p50 / p99 ms | command p50 / p99 ms"
        " | lag at end (most behind projection) | CPU % of a core (+ % waiting for a core): "
        + ", ".join([*names, "others", MACHINE])
        + " | load avg 1/5/15 | mongo ops/s: "
        + ", ".join(MONGO_OPS)
    )
    out = ["per window:", header]
    end = 0.0
    for figures in windows:
        start, end = end, end + figures.seconds
        ours = sum(figures.cpu.get(name, 0.0) for name in names)
        machine = figures.cpu.get(MACHINE)
        cpu = [
            f"{figures.cpu[name]:.0f}+{figures.cpu_wait.get(name, 0):.0f}"
            if name in figures.cpu
            else "?"
            for name in names
        ]
        cpu += (
            ["?", "?"] if machine is None else [f"{max(machine - ours, 0):.0f}", f"{machine:.0f}"]
        )
        out.append(
            f"{start:.0f}-{end:.0f} s | {figures.rate:.1f} | {figures.query_rate:.1f} | "
            f"{figures.stale}/{figures.token_reads}"
            f" ({100 * figures.stale_share:.1f} %) | {_ms(figures.token_get_s)} | "
            f"{_ms(figures.plain_get_s)} | {_ms(figures.command_s)} | {figures.lag or '?'} | "
            f"{' '.join(cpu)} | "
            + " ".join(f"{value:.2f}" for value in figures.load)
            + " | "
            + " ".join(
                f"{figures.mongo_ops[kind]:.0f}" if kind in figures.mongo_ops else "?"
                for kind in MONGO_OPS
            )
        )
    rates = [w.rate for w in windows]
    out.append(
        f"lag trend: {lag_trend([w.lag for w in windows])}; worst window stale "
        f"{100 * max(w.stale_share for w in windows):.1f} %; commands/s "
        f"{statistics.mean(rates):.1f} mean; projector keeps up: "
        f"{'yes' if keeps_up(windows) else 'no'}"
    )
    return out
