"""`embedded-eventstore`: an EventStoreDB-compatible gRPC server on SQLite.

For local development and tests: esdbclient talks to it as to a single EventStoreDB 23.10 node
without TLS. Prints one ready line with the URI once it accepts connections; SIGTERM or SIGINT
stops it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from pathlib import Path

PROG = "embedded-eventstore"


def _advertise_host(value: str) -> str:
    from embedded.eventstore.cluster_services import check_advertise_host

    try:
        return check_advertise_host(value)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from problem


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="EventStoreDB-compatible gRPC server on SQLite (for development and tests).",
    )
    parser.add_argument("--db", type=Path, required=True, help="SQLite file holding the events")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=2113, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--advertise-host",
        type=_advertise_host,
        metavar="HOST",
        help="host name or IP address (no scheme, no port) that gossip (esdb+discover://)"
        " and the ready line tell clients to dial, always with the port the server listens on"
        " (default: the bind host; 127.0.0.1 when bound to 0.0.0.0, ::1 for ::)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if not args.host:
        parser.error("--host must not be empty")
    if args.db.is_dir():
        parser.error(f"--db: {str(args.db)!r} is a directory, not a file")
    if not args.db.parent.is_dir():
        parser.error(f"--db: directory {str(args.db.parent)!r} does not exist")
    return args


async def serve(args: argparse.Namespace) -> None:
    from embedded.eventstore.event_store import EventStore
    from embedded.eventstore.server import start_server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = await EventStore.open(args.db)
    try:
        running = await start_server(store, args.host, args.port, args.advertise_host)
    except BaseException:
        await store.close()
        raise
    try:
        print(f"{PROG} ready: {running.uri}", flush=True)
        await stop.wait()
    finally:
        await running.stop()
    print(f"{PROG} stopped", flush=True)


def _is_client_gone(record: logging.LogRecord) -> bool:
    """grpcio logs ExecuteBatchError when a response write fails because the client went away
    (e.g. a cancelled subscription whose reader had stopped reading); that is not a fault."""
    error = record.exc_info[1] if record.exc_info else None
    return type(error).__name__ == "ExecuteBatchError"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("grpc._cython.cygrpc").addFilter(lambda record: not _is_client_gone(record))
    from embedded.eventstore.server import BindError

    try:
        asyncio.run(serve(args))
    except BindError as error:
        print(f"{PROG}: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    except (OSError, sqlite3.Error) as error:  # e.g. the database file cannot be opened
        print(f"{PROG}: cannot use database {str(args.db)!r}: {error}", file=sys.stderr)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
