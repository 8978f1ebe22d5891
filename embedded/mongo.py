"""`embedded-mongo`: a thin launcher for mongoeco's MongoDB-wire server.

mongoeco does the work (wire protocol, query engine, SQLite storage). This module only parses
arguments, starts the server, prints one ready line with the URI and stops on SIGTERM/SIGINT.
Its engines (memory or SQLite) are mongoeco's with lookups by ``_id`` that do not scan the
collection (``embedded.mongo_engines``); the SQLite engine delivers change streams from the
client's hub and keeps no outbox (``embedded.mongo_change_streams``). For local development and
tests; not a production database.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

DRAIN_TIMEOUT_S = 3.0
CLOSE_TIMEOUT_S = 1.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embedded-mongo",
        description="MongoDB-wire server on SQLite (mongoeco) for local development and tests.",
    )
    storage = parser.add_mutually_exclusive_group(required=True)
    storage.add_argument("--db", type=Path, help="SQLite file holding the data")
    storage.add_argument("--memory", action="store_true", help="keep data in memory only")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=27017, help="TCP port; 0 picks a free one")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.db is not None and not args.db.parent.is_dir():
        parser.error(f"--db: directory {str(args.db.parent)!r} does not exist")
    return args


def build_engine(args: argparse.Namespace) -> Any:
    """The storage engine ``args`` ask for (imported here: ``--help`` stays fast)."""
    from embedded.mongo_change_streams import HubDeliverySQLiteEngine
    from embedded.mongo_engines import IdLookupMemoryEngine

    return IdLookupMemoryEngine() if args.memory else HubDeliverySQLiteEngine(str(args.db))


async def serve(args: argparse.Namespace) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    server = AsyncMongoEcoProxyServer(engine=build_engine(args), host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    address = await server.start()
    try:
        print(f"embedded-mongo ready: {address.uri}", flush=True)
        await stop.wait()
    finally:
        await _close(server)


async def _drain(server: Any) -> None:
    """Give connected clients up to DRAIN_TIMEOUT_S to finish and disconnect.

    A supervisor stops every process at once (Ctrl-C under honcho): the projector then still
    needs the database to save its last checkpoint, and the API to close its client cleanly.
    Reads mongoeco's set of connection handlers; without it, closes at once.
    """
    handlers = getattr(server, "_handlers", None)
    if not isinstance(handlers, set):
        return
    deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
    while handlers:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        await asyncio.wait(tuple(handlers), timeout=remaining)


async def _close(server: Any) -> None:
    """Stop within a bounded time: a process supervisor kills what lingers. Every write that
    was acknowledged is already committed by SQLite; cleanup only releases resources."""
    await _drain(server)
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await server.close()
    except Exception as error:  # one line, never a traceback, at exit
        print(f"embedded-mongo: shutdown cleanup incomplete: {error!r}", file=sys.stderr)
    print("embedded-mongo stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as error:
        print(f"embedded-mongo: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
