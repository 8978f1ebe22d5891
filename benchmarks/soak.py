"""Soak: the stack as ``make run`` starts it, under mixed traffic and faults, then proofs.

Run from the repository root (the duration is the traffic's; proofs add a minute or so):

    .venv/bin/python -m benchmarks.soak [--duration 300] [--clients 16] [--hot-clients 4]
        [--projector-kills 25] [--catch-up-events 1000] [--catch-up-kills 3]
        [--projectors 3] [--rolling-restarts 3] [--lease-s 2]
        [--steady] [--rate N] [--window 30] [--no-store-restarts] [--token-wait-ms 250]

It starts embedded-eventstore, embedded-mongo, orders-api and ``--projectors`` instances of
``projector run`` from the Procfile lines, with the environment ``scripts/run-stack`` gives
them, on free ports in a temporary DATA_DIR, each as a process of its own (see ``tests/soak/``);
the instances share the projections through leases (``--lease-s``, 2 s by default). While
clients drive order lives (and hot orders several clients share) and queries, it kills the
instance holding a random projection's lease with ``kill -9`` at random points (a replacement
starts at once) and, once, the owner of the first write of a catch-up of at least
``--catch-up-events`` events, replaces every instance in turn (``--rolling-restarts``:
SIGTERM, a new instance), kills embedded-eventstore with ``kill -9``, and stops embedded-mongo
with SIGTERM and with SIGKILL, restarting each on the same file and port; the API is never
restarted. Then it checks every acknowledged command against the log, compares every
read-model document with a clean rebuild, runs a final round of commands, checks that the
stopped instances left no lease owned, and prints the figures (failover and handover times of
the leases, stale reads with a token per phase of the run). Exit code 1 when a proof did not
hold.

``--steady`` plans no fault at all (no projector kills, catch-up kills, rolling restarts or
store restarts): sustained traffic only, to measure the rate the projector keeps up with.
``--no-store-restarts`` keeps the other faults but leaves both stores running, and
``--token-wait-ms`` sets how long reads with a token wait (250 ms by default, to see lag; the
API's own default is 2000): together, e.g. ``--projector-kills 0 --catch-up-kills 0
--rolling-restarts 2 --no-store-restarts --rate 20 --token-wait-ms 2000``, they show whether
a rolling restart costs reads made with the usual wait anything.
``--rate N`` paces the clients to N commands/s in all (a token bucket they share; unpaced
without it: each client sends its next request as soon as it has an answer). ``--window S``
prints figures per S seconds of traffic (30 by default with ``--steady``): commands and
queries answered a second, stale reads with a token, p50 / p99 of GETs with and without a
token and of commands, the projector's lag at the window's end, CPU per process and how long
it waited for a core (and the load generator's, everyone else's on the machine), the load
averages and embedded-mongo's operations a second by kind; then whether the projector kept up
(its lag not growing window over window, under 1 % stale reads in every window).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from read_side.queries import MAX_WAIT_MS
from tests.soak.clients import TOKEN_WAIT_MS
from tests.soak.harness import SoakPlan, run_soak
from tests.soak.stack import LEASE_S

# Enough closed-loop clients to offer 100 commands/s while each waits for its token reads.
MAX_CLIENTS = 64
FAULTS = {"projector_kills": 25, "catch_up_kills": 3, "rolling_restarts": 3}  # the defaults
STEADY_WINDOW_S = 30.0


def plan_of(argv: list[str] | None = None) -> tuple[SoakPlan, Path | None]:
    """The plan the command line asks for, and the directory to keep (``--keep``); a bad
    combination exits with a usage error."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=16, help="clients with orders of their own")
    parser.add_argument("--hot-clients", type=int, default=4, help="clients sharing hot orders")
    parser.add_argument("--projector-kills", type=int, help="25 unless --steady")
    parser.add_argument("--catch-up-events", type=int, default=1000)
    parser.add_argument("--catch-up-kills", type=int, help="3 unless --steady")
    parser.add_argument("--projectors", type=int, default=3, help="projector instances")
    parser.add_argument(
        "--rolling-restarts",
        type=int,
        help="times every instance is replaced in turn; 3 unless --steady",
    )
    parser.add_argument("--steady", action="store_true", help="no faults at all")
    parser.add_argument(
        "--no-store-restarts",
        action="store_true",
        help="leave embedded-eventstore and embedded-mongo running (no kill -9, no SIGTERM)",
    )
    parser.add_argument(
        "--token-wait-ms",
        type=int,
        default=TOKEN_WAIT_MS,
        help=f"wait_ms of the reads with a token ({TOKEN_WAIT_MS} by default; the API's "
        "default wait is READ_WAIT_MS_DEFAULT)",
    )
    parser.add_argument("--rate", type=float, help="commands/s the clients offer in all")
    parser.add_argument(
        "--window",
        type=float,
        help=f"seconds per window of figures ({STEADY_WINDOW_S:g} if steady)",
    )
    parser.add_argument(
        "--lease-s", type=float, default=LEASE_S, help="PROJECTOR_LEASE_S of the instances"
    )
    parser.add_argument("--keep", type=Path, help="keep data and logs in this directory")
    args = parser.parse_args(argv)
    if not 8 <= args.clients + args.hot_clients <= MAX_CLIENTS:
        parser.error(f"use 8 to {MAX_CLIENTS} clients in all")
    if min(args.clients, args.hot_clients) < 0:
        parser.error("client counts cannot be negative")
    if args.projectors < 1:
        parser.error("use at least one projector instance")
    faults = {name: getattr(args, name) for name in FAULTS}
    if args.steady:
        given = [f"--{name.replace('_', '-')}" for name, count in faults.items() if count]
        if given:
            parser.error(f"--steady plans no faults: drop {', '.join(given)}")
        faults = dict.fromkeys(FAULTS, 0)
    faults = {name: FAULTS[name] if count is None else count for name, count in faults.items()}
    if min(faults.values()) < 0:
        parser.error("fault counts cannot be negative")
    if not 0 <= args.token_wait_ms <= MAX_WAIT_MS:
        parser.error(f"--token-wait-ms must be 0 to {MAX_WAIT_MS}")
    if args.rate is not None and not args.rate > 0:
        parser.error("--rate must be above 0 commands/s")
    window_s = args.window if args.window is not None else STEADY_WINDOW_S if args.steady else None
    if window_s is not None and not 0 < window_s <= args.duration:
        parser.error("--window must be above 0 and at most --duration seconds")
    plan = SoakPlan(
        seconds=args.duration,
        clients=args.clients,
        hot_clients=args.hot_clients,
        catch_up_events=args.catch_up_events,
        projectors=args.projectors,
        lease_s=args.lease_s,
        store_restarts=not (args.steady or args.no_store_restarts),
        token_wait_ms=args.token_wait_ms,
        rate=args.rate,
        window_s=window_s,
        **faults,
    )
    return plan, args.keep


def main(argv: list[str] | None = None) -> int:
    plan, keep = plan_of(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        workdir = keep or Path(scratch)
        print(f"soak: {plan}; logs in {workdir / 'logs'}", flush=True)
        figures = asyncio.run(run_soak(plan, workdir))
    for line in figures.lines():
        print(line)
    return 1 if figures.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
