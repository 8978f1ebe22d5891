"""A light HTTP/1.1 client for load generators: keep-alive connections, JSON in, bytes out.
The soak's clients and ``benchmarks/command_throughput.py`` use it.

The soak's clients used httpx. Profiled with py-spy during a soak at 100 commands/s, httpx was
about half of the load generator's samples (its connection pool, anyio's stream layer and
sniffio's look-up of the running async library on every call), and the generator took 24 to
52 % of a core on a machine of two, shared with the stack it measures (6 to 10 % with this
client). This client does what the soak needs and no more, on asyncio streams: one request at
a time per connection, the connections kept open in a pool of at most ``max_connections``,
responses read by their ``Content-Length`` (or chunked, or up to the end of the connection).

It answers with what the soak reads of an answer, under httpx's names (``status_code``,
``headers``, ``text``, ``json()``, ``is_success``), and fails with httpx's transport errors
(``ConnectError``, ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError``), so that the soak's
retry policy and its reports are the same with either client.

A connection kept open may have been closed by the server meanwhile (uvicorn closes one idle for
5 s): a request on a kept connection that ends before any byte of an answer is sent again once on
a new connection, as the server never answered it (the soak's commands carry an
``Idempotency-Key``, so even a request the server did read cannot apply twice).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

NO_BODY = (204, 304)


class Headers:
    """Response headers, looked up by name case-insensitively (the last of a repeated name)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._by_name = {name.lower(): value for name, value in pairs}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._by_name.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]


@dataclass
class Response:
    status_code: int
    headers: Headers
    content: bytes
    keep_alive: bool = field(default=True, repr=False)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class _ClosedBeforeAnswer(Exception):
    """The connection ended before any byte of the answer."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        return self.reader.at_eof() or self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, head: bytes, body: bytes) -> Response:
        self.writer.write(head + body)
        await self.writer.drain()
        try:
            raw_head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                raise _ClosedBeforeAnswer from error
            raise
        status_line, *lines = raw_head[:-4].decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(parts[1])
        pairs = []
        for line in lines:
            name, _, value = line.partition(":")
            pairs.append((name.strip(), value.strip()))
        headers = Headers(pairs)
        keep_alive = (headers.get("connection") or "").lower() != "close"
        length = headers.get("content-length")
        if status in NO_BODY or (100 <= status < 200):
            content = b""
        elif length is not None:
            content = await self.reader.readexactly(int(length))
        elif (headers.get("transfer-encoding") or "").lower() == "chunked":
            content = await self._chunked()
        else:
            content, keep_alive = await self.reader.read(), False
        return Response(status, headers, content, keep_alive)

    async def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class ApiClient:
    """Requests to one HTTP/1.1 server (``base_url``), each within ``timeout`` seconds, over at
    most ``max_connections`` kept-open connections."""

    def __init__(self, base_url: str, *, timeout: float, max_connections: int) -> None:
        address = urlsplit(base_url)
        if address.scheme != "http" or address.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, got {base_url!r}")
        self._host, self._port = address.hostname, address.port or 80
        self._authority = address.netloc
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self.request("POST", path, json=json, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        target = f"{path}?{urlencode(params)}" if params else path
        body = b"" if json is None else jsonlib.dumps(json).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._authority}"]
        if json is not None:
            lines.append("Content-Type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with self._slots:
            return await self._send(head, body, f"{method} {target}")

    async def _send(self, head: bytes, body: bytes, what: str) -> Response:
        connection, reused = self._kept()
        try:
            async with asyncio.timeout(self._timeout):
                if connection is None:
                    connection = await self._connect(what)
                try:
                    response = await connection.exchange(head, body)
                except (_ClosedBeforeAnswer, ConnectionError):
                    if not reused:
                        raise
                    connection.close()  # the server closed it while it was kept: once more
                    connection = await self._connect(what)
                    response = await connection.exchange(head, body)
        except TimeoutError as error:
            if connection is not None:
                connection.close()
            raise httpx.ReadTimeout(f"{what}: no answer within {self._timeout} s") from error
        except httpx.TransportError:
            if connection is not None:
                connection.close()
            raise
        except (
            _ClosedBeforeAnswer,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            OSError,
            ValueError,
        ) as error:
            if connection is not None:
                connection.close()
            raise httpx.ReadError(f"{what}: {type(error).__name__}: {error}") from error
        if response.keep_alive:
            self._idle.append(connection)
        else:
            connection.close()
        return response

    def _kept(self) -> tuple[_Connection | None, bool]:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
            connection.close()
        return None, False

    async def _connect(self, what: str) -> _Connection:
        try:
            return await _Connection.open(self._host, self._port)
        except OSError as error:
            raise httpx.ConnectError(f"{what}: {error}") from error
