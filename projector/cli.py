"""``projector`` and ``rebuild-projection``: run the daemon, rebuild, status, dead letters.

Exit codes: 0 done (also after SIGTERM/SIGINT stopped the daemon cleanly); 1 the work failed
(stores unreachable at start-up, a rebuild failed or is already running, nothing to park);
2 bad usage or configuration (unknown projection name, bad environment variable); 130 a
rebuild was interrupted (it resumes next time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import NoReturn

from projector.catalog import pick, subscription_event_types
from projector.composition import Stores, open_stores
from projector.daemon import run_daemon
from projector.dead_letters import NothingToPark, list_dead_letters, park_failed_event
from projector.leases import default_instance_id
from projector.metrics import ProjectorMetrics
from projector.projection import Projection
from projector.projections import UnknownProjection, all_projections
from projector.rebuild import RebuildFailed, RebuildLost, RebuildOptions, rebuild_projection
from projector.runner import RunnerSettings
from projector.settings import ProjectorSettings, load_settings_or_exit
from projector.status import projector_report
from projector.tables import dead_letters_table, report_tables
from projector.version_registry import RebuildInProgress
from shared.contract.order_events import build_order_event_registry
from shared.process.logging_setup import configure_logging, redact
from shared.process.startup import StoreUnreachable

log = logging.getLogger("projector")
INTERRUPTED = 130


def _runner_settings(settings: ProjectorSettings, batch_size: int | None = None) -> RunnerSettings:
    return RunnerSettings(
        batch_size=batch_size or settings.projector_batch_size,
        batch_wait_s=settings.batch_wait_s,
        idle_s=max(settings.batch_wait_s, 1.0),
        backoff_max_s=settings.projector_max_backoff_s,
    )


def _stop_on_signals(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT: finish the batch and exit; a second one acts as usual."""
    loop = asyncio.get_running_loop()

    def requested(signum: int) -> None:
        log.info("%s received: finishing the current batch", signal.Signals(signum).name)
        stop.set()
        for each in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(each)

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, requested, signum)
        except (RuntimeError, ValueError):  # not the main thread (embedded, tests): no signals
            return


async def _with_stores(
    settings: ProjectorSettings, work: Callable[[Stores, asyncio.Event], Awaitable[int]]
) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        async with open_stores(settings, stop) as stores:
            if stop.is_set():
                return 0
            return await work(stores, stop)
    except StoreUnreachable as error:
        print(f"projector: {redact(str(error))}", file=sys.stderr)
        return 1


async def _run(settings: ProjectorSettings, projections: Sequence[Projection]) -> int:
    metrics = ProjectorMetrics()
    try:
        metrics.serve(settings.projector_metrics_port, settings.projector_metrics_host)
    except OSError as error:
        where = f"{settings.projector_metrics_host}:{settings.projector_metrics_port}"
        print(f"projector: PROJECTOR_METRICS_HOST/PORT {where}: {error}", file=sys.stderr)
        return 1
    log.info(
        "projector starting: %s, batches of up to %d events lingering %d ms for more",
        ", ".join(p.name for p in projections),
        settings.projector_batch_size,
        settings.projector_batch_ms,
    )

    async def work(stores: Stores, stop: asyncio.Event) -> int:
        await run_daemon(
            stores.events,
            stores.documents,
            build_order_event_registry(),
            projections,
            event_types=subscription_event_types(projections),
            settings=_runner_settings(settings),
            stop=stop,
            retire_grace=timedelta(seconds=settings.projector_retire_grace_s),
            observer=metrics,
            instance_id=settings.projector_instance_id,
            lease_s=settings.projector_lease_s,
            lease_observer=metrics,
        )
        log.info("projector stopped")
        return 0

    return await _with_stores(settings, work)


async def _rebuild(
    settings: ProjectorSettings, projections: Sequence[Projection], args: argparse.Namespace
) -> int:
    projection = pick(projections, args.name)
    options = RebuildOptions(
        runner=_runner_settings(settings, args.batch_size),
        retire_grace_s=settings.projector_retire_grace_s,
        restart=args.restart,
        show_progress=not args.no_progress,
    )

    async def work(stores: Stores, stop: asyncio.Event) -> int:
        try:
            outcome = await rebuild_projection(
                stores.events,
                stores.documents,
                build_order_event_registry(),
                projection,
                event_types=subscription_event_types(projections),
                options=options,
                stop=stop,
            )
        except RebuildFailed as error:
            print(f"rebuild failed: {error}", file=sys.stderr)
            print(f"inspect it, then: projector dead-letter park {args.name}", file=sys.stderr)
            return 1
        except (RebuildInProgress, RebuildLost) as error:
            print(f"rebuild not done: {error}", file=sys.stderr)
            return 1
        rate = outcome.events / outcome.seconds if outcome.seconds else 0.0
        if not outcome.switched:
            print(f"interrupted: {args.name} v{outcome.version} is unused; run again to resume")
            return INTERRUPTED
        print(
            f"{args.name}: switched from v{outcome.previous_version} to v{outcome.version} "
            f"({outcome.events} events in {outcome.seconds:.1f}s, {rate:.0f} events/s)"
        )
        return 0

    return await _with_stores(settings, work)


async def _status(settings: ProjectorSettings, args: argparse.Namespace) -> int:
    async def work(stores: Stores, stop: asyncio.Event) -> int:
        report = await projector_report(stores.documents, stores.events)
        if args.json:
            print(json.dumps(report.model_dump(mode="json"), indent=2))
        else:
            print(report_tables(report))
        return 0

    return await _with_stores(settings, work)


async def _dead_letter(
    settings: ProjectorSettings, projections: Sequence[Projection], args: argparse.Namespace
) -> int:
    if args.action == "park":
        pick(projections, args.name)

    async def work(stores: Stores, stop: asyncio.Event) -> int:
        if args.action == "park":
            try:
                parked = await park_failed_event(stores.documents, stores.events, args.name)
            except NothingToPark as error:
                print(f"nothing parked: {error}", file=sys.stderr)
                return 1
            for letter in parked:
                print(
                    f"parked {letter.event_type} {letter.event_id} (position {letter.position}) "
                    f"of {letter.projection} v{letter.version}; it resumes after it"
                )
            return 0
        letters = await list_dead_letters(stores.documents, args.projection)
        if args.json:
            print(json.dumps([d.model_dump(mode="json") for d in letters], indent=2))
        else:
            print(dead_letters_table(letters))
        return 0

    return await _with_stores(settings, work)


def _add_rebuild_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="projection to rebuild")
    parser.add_argument(
        "--restart", action="store_true", help="start an interrupted rebuild over from scratch"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--batch-size", type=int, help="events per batch (default: settings)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="projector", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the projector daemon")
    status = commands.add_parser("status", help="show every projection's status")
    status.add_argument("--json", action="store_true", help="print JSON")
    _add_rebuild_arguments(
        commands.add_parser("rebuild", help="rebuild a projection without downtime")
    )
    dead = commands.add_parser("dead-letter", help="parked events")
    actions = dead.add_subparsers(dest="action", required=True)
    park = actions.add_parser("park", help="park the event a projection failed on; resume it")
    park.add_argument("name", help="the failed projection")
    listing = actions.add_parser("list", help="list parked events")
    listing.add_argument("--projection", help="only this projection's")
    listing.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    settings = load_settings_or_exit()
    if args.command == "run":
        # One id for the leases, status and every log line of this daemon instance.
        instance = settings.projector_instance_id or default_instance_id()
        settings = settings.model_copy(update={"projector_instance_id": instance})
        configure_logging(settings.log_level, settings.log_format, instance=instance)
    else:
        configure_logging(settings.log_level, settings.log_format)
    projections = all_projections()
    try:
        if args.command == "run":
            return asyncio.run(_run(settings, projections))
        if args.command == "status":
            return asyncio.run(_status(settings, args))
        if args.command == "rebuild":
            return asyncio.run(_rebuild(settings, projections, args))
        return asyncio.run(_dead_letter(settings, projections, args))
    except UnknownProjection as error:
        print(f"projector: {error}", file=sys.stderr)
        return 2


def _exit_now(code: int) -> NoReturn:
    """Exit the daemon without joining driver threads.

    Everything durable is done by now (checkpoints saved, or the cut-short batch left to be
    re-delivered). A MongoDB that stopped at the same moment (Ctrl-C under honcho stops every
    process at once) can leave pymongo's worker threads in server selection for seconds, and
    interpreter shutdown would wait for them until the supervisor kills the process.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    code = _dispatch(args)
    if args.command == "run":
        _exit_now(code)
    raise SystemExit(code)


def rebuild_main(argv: Sequence[str] | None = None) -> None:
    """``rebuild-projection NAME``: the same as ``projector rebuild NAME``."""
    parser = argparse.ArgumentParser(
        prog="rebuild-projection", description="Rebuild a projection without downtime."
    )
    _add_rebuild_arguments(parser)
    args = parser.parse_args(argv)
    args.command = "rebuild"
    raise SystemExit(_dispatch(args))
