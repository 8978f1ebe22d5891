"""TCP servers on loopback that accept connections and then misbehave, for outage tests.

``garbage_server`` answers every connection (and every chunk it receives) with bytes that are no
protocol at all; ``silent_server`` accepts and reads but never answers, like a process that is
alive but stuck. Each yields its port and closes every connection it accepted on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

GARBAGE = bytes(random.Random(7).randrange(256) for _ in range(4096))


@contextlib.asynccontextmanager
async def _serve(answer: bytes | None) -> AsyncIterator[int]:
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            if answer is not None:
                writer.write(answer)
            while await reader.read(65536):
                if answer is not None:
                    writer.write(answer)
        except (ConnectionError, OSError):
            pass
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for writer in list(writers):
            writer.close()
        await server.wait_closed()


def garbage_server() -> contextlib.AbstractAsyncContextManager[int]:
    """Accepts, then answers garbage to everything."""
    return _serve(GARBAGE)


def silent_server() -> contextlib.AbstractAsyncContextManager[int]:
    """Accepts and reads, never answers."""
    return _serve(None)
