"""Soak: the stack as ``make run`` starts it, under mixed traffic and faults, then proofs.

Run from the repository root (the duration is the traffic's; proofs add a minute or so):

    .venv/bin/python -m benchmarks.soak [--duration 300] [--clients 16] [--hot-clients 4]
        [--projector-kills 25] [--catch-up-events 1000] [--catch-up-kills 3]
        [--projectors 3] [--rolling-restarts 3] [--lease-s 2]

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
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from tests.soak.harness import SoakPlan, run_soak
from tests.soak.stack import LEASE_S


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=16, help="clients with orders of their own")
    parser.add_argument("--hot-clients", type=int, default=4, help="clients sharing hot orders")
    parser.add_argument("--projector-kills", type=int, default=25)
    parser.add_argument("--catch-up-events", type=int, default=1000)
    parser.add_argument("--catch-up-kills", type=int, default=3)
    parser.add_argument("--projectors", type=int, default=3, help="projector instances")
    parser.add_argument(
        "--rolling-restarts", type=int, default=3, help="times every instance is replaced in turn"
    )
    parser.add_argument(
        "--lease-s", type=float, default=LEASE_S, help="PROJECTOR_LEASE_S of the instances"
    )
    parser.add_argument("--keep", type=Path, help="keep data and logs in this directory")
    args = parser.parse_args(argv)
    if not 8 <= args.clients + args.hot_clients <= 32:
        parser.error("use 8 to 32 clients in all")
    if args.projectors < 1:
        parser.error("use at least one projector instance")
    if min(args.projector_kills, args.catch_up_kills, args.rolling_restarts) < 0:
        parser.error("fault counts cannot be negative")
    plan = SoakPlan(
        seconds=args.duration,
        clients=args.clients,
        hot_clients=args.hot_clients,
        projector_kills=args.projector_kills,
        catch_up_events=args.catch_up_events,
        catch_up_kills=args.catch_up_kills,
        projectors=args.projectors,
        rolling_restarts=args.rolling_restarts,
        lease_s=args.lease_s,
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        workdir = args.keep or Path(scratch)
        print(f"soak: {plan}; logs in {workdir / 'logs'}", flush=True)
        figures = asyncio.run(run_soak(plan, workdir))
    for line in figures.lines():
        print(line)
    return 1 if figures.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
