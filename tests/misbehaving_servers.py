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
        server.close_clients()  # also connections whose handler has not started yet
        for writer in list(writers):
            writer.close()
        await server.wait_closed()


def garbage_server() -> contextlib.AbstractAsyncContextManager[int]:
    """Accepts, then answers garbage to everything."""
    return _serve(GARBAGE)


def silent_server() -> contextlib.AbstractAsyncContextManager[int]:
    """Accepts and reads, never answers."""
    return _serve(None)


class TurningProxy:
    """Forwards every connection to ``upstream`` (host, port) until ``turn()``; from then on it
    answers what clients send with garbage on the connections they already have open, like a
    server that starts to misbehave mid-session."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.turned = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def turn(self) -> None:
        self.turned = True

    async def __aenter__(self) -> TurningProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        self._server.close_clients()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if not self.turned:
                    writer.write(data)

        pump = asyncio.create_task(downstream())
        try:
            while data := await reader.read(65536):
                if self.turned:
                    writer.write(GARBAGE)
                else:
                    up_writer.write(data)
        except (ConnectionError, OSError):
            pass
        finally:
            pump.cancel()
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()
