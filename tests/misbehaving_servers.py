"""TCP servers on loopback that accept connections and then misbehave, for outage tests.

``garbage_server`` answers every connection (and every chunk it receives) with bytes that are no
protocol at all; ``silent_server`` accepts and reads but never answers, like a process that is
alive but stuck; ``TurningProxy`` forwards to a real server until told to turn to garbage. Each
closes every connection it accepted on exit.

They run on threads with blocking sockets, not on the test's event loop: the clients under test
(pymongo's monitor threads, gRPC's own I/O) connect whenever they like, also while a server is
being closed, and an asyncio server on a loop that ends with the test leaves such late
connections to be collected unclosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import socketserver
import threading
from collections.abc import AsyncIterator, Callable

GARBAGE = bytes(random.Random(7).randrange(256) for _ in range(4096))
CHUNK = 65536


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, serve: Callable[[_Server, socket.socket], None]) -> None:
        self.serve = serve
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closing = False
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def track(self, connection: socket.socket) -> bool:
        """Remember ``connection`` to close it on exit; False if the server is closing."""
        with self.lock:
            if self.closing:
                return False
            self.connections.add(connection)
            return True

    def close_all(self) -> None:
        self.shutdown()
        self.server_close()
        with self.lock:
            self.closing = True
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            _close(connection)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def handle(self) -> None:
        if not self.server.track(self.request):
            return
        with contextlib.suppress(OSError):
            self.server.serve(self.server, self.request)


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


@contextlib.asynccontextmanager
async def _running(serve: Callable[[_Server, socket.socket], None]) -> AsyncIterator[_Server]:
    server = _Server(serve)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.close_all)


def _answer_with(answer: bytes | None) -> Callable[[_Server, socket.socket], None]:
    def serve(_: _Server, connection: socket.socket) -> None:
        if answer is not None:
            connection.sendall(answer)
        while connection.recv(CHUNK):
            if answer is not None:
                connection.sendall(answer)

    return serve


@contextlib.asynccontextmanager
async def garbage_server() -> AsyncIterator[int]:
    """Accepts, then answers garbage to everything."""
    async with _running(_answer_with(GARBAGE)) as server:
        yield server.port


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts and reads, never answers."""
    async with _running(_answer_with(None)) as server:
        yield server.port


class TurningProxy:
    """Forwards every connection to ``upstream`` (host, port) until ``turn()``; from then on it
    answers what clients send with garbage on the connections they already have open, like a
    server that starts to misbehave mid-session."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.turned = False
        self.port = 0
        self._running: contextlib.AbstractAsyncContextManager[_Server] | None = None

    def turn(self) -> None:
        self.turned = True

    async def __aenter__(self) -> TurningProxy:
        self._running = _running(self._serve)
        server = await self._running.__aenter__()
        self.port = server.port
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._running is not None
        await self._running.__aexit__(None, None, None)

    def _serve(self, server: _Server, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        if not server.track(upstream):
            _close(upstream)
            return

        def downstream() -> None:
            with contextlib.suppress(OSError):
                while data := upstream.recv(CHUNK):
                    if not self.turned:
                        client.sendall(data)

        threading.Thread(target=downstream, daemon=True).start()
        try:
            while data := client.recv(CHUNK):
                if self.turned:
                    client.sendall(GARBAGE)
                else:
                    upstream.sendall(data)
        finally:
            _close(upstream)
            _close(client)
