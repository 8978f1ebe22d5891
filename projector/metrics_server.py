"""The projector's ``/metrics`` endpoint: a small HTTP/1.x server that slow clients cannot exhaust.

prometheus_client's ``start_http_server`` is a ``ThreadingHTTPServer``: one thread per
connection and no read timeout, so a client that connects and sends nothing (or a byte a minute)
holds a thread for ever, and enough of them hold the process. This server runs one asyncio loop
on one thread of its own (so scrapes answer even while the daemon's loop is busy folding a
batch), and bounds what a connection may cost:

* the request head (request line and headers) must arrive whole within ``request_timeout_s``
  and fit in ``max_request_bytes``, or the connection is closed;
* at most ``max_connections`` are open; a new one evicts the oldest connection still waiting
  for its request head, so idle connections cannot lock a real scrape out;
* one request per connection (``Connection: close``); writing the answer has the same deadline.

Only ``GET`` / ``HEAD`` of ``/metrics`` (or ``/``) are served, in the exposition format the
client's ``Accept`` header asks for (as prometheus_client does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64
MAX_REQUEST_BYTES = 8192
METRICS_PATHS = frozenset({"/metrics", "/"})
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class MetricsServer:
    """Serves ``registry`` on ``host:port`` (port 0: any free port) from a thread of its own."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        self.max_request_bytes = max_request_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        # Open connections in arrival order; True while still waiting for the request head.
        self._waiting: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._open: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # every connection's, until it is done

    def start(self) -> int:
        """Bind and serve; returns the port. A bind error (port taken) is raised here."""
        loop = asyncio.new_event_loop()
        started: list[BaseException | int] = []
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._connection, self.host, self.port, limit=self.max_request_bytes
                    )
                )
                started.append(self._server.sockets[0].getsockname()[1])
            except BaseException as error:  # handed to start(), which raises it
                started.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shut_down())
                loop.close()

        self._thread = threading.Thread(target=run, name="projector-metrics", daemon=True)
        self._thread.start()
        ready.wait()
        outcome = started[0]
        if isinstance(outcome, BaseException):
            self._thread.join()
            raise outcome
        self._loop = loop
        self.port = outcome
        return outcome

    def close(self) -> None:
        """Stop serving and close every connection (idempotent)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    async def _shut_down(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if len(self._open) >= self.max_connections and not self._evict_oldest_waiting():
            log.debug("metrics connection refused: %d connections busy", len(self._open))
            writer.close()
            return
        self._open.add(task)
        self._waiting[task] = writer
        try:
            await self._serve(reader, writer, task)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            log.debug("metrics connection closed: no complete request in time")
        finally:
            self._waiting.pop(task, None)
            self._open.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _evict_oldest_waiting(self) -> bool:
        if not self._waiting:
            return False
        task = next(iter(self._waiting))
        log.debug("metrics connection evicted: no request yet, another client is waiting")
        self._waiting.pop(task).close()
        task.cancel()
        return True

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task[None]
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_timeout_s)
        except asyncio.LimitOverrunError:
            await self._answer(writer, 400, b"request head too large\n", head_only=False)
            return
        del self._waiting[task]
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._answer(writer, 400, b"malformed request\n", head_only=False)
            return
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            await self._answer(writer, 405, b"only GET\n", head_only=False, allow=True)
            return
        if target.partition("?")[0] not in METRICS_PATHS:
            await self._answer(writer, 404, b"try /metrics\n", head_only=method == "HEAD")
            return
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        encode, content_type = choose_encoder(accept)
        body = encode(self.registry)
        await self._answer(writer, 200, body, head_only=method == "HEAD", content_type=content_type)

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        *,
        head_only: bool,
        content_type: str = "text/plain; charset=utf-8",
        allow: bool = False,
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            + ("Allow: GET, HEAD\r\n" if allow else "")
            + "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + (b"" if head_only else body))
        await asyncio.wait_for(writer.drain(), self.request_timeout_s)
