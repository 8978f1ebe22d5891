"""The load generator's HTTP/1.1 client (``tests/soak/http.py``) against a scripted server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from tests.soak.http import ApiClient

Answer = Callable[["Seen", asyncio.StreamWriter], Awaitable[bool]]  # False: close the connection


@dataclass
class Seen:
    """One request as the server read it."""

    connection: int
    on_connection: int  # how many requests this connection carried before this one
    request_line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    answer: Answer
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        number, carried = self.connections, 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                request_line, *lines = head[:-4].decode().split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(number, carried, request_line, headers, body)
                carried += 1
                self.requests.append(seen)
                if not await self.answer(seen, writer):
                    return
        finally:
            self.open_now -= 1
            writer.close()


def reply(status: int, body: bytes = b"{}", *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def ok(seen: Seen, writer: asyncio.StreamWriter) -> bool:
    writer.write(reply(200, json.dumps({"n": len(seen.body)}).encode(), "X-Read-Model-Stale: a"))
    await writer.drain()
    return True


def client(url: str) -> ApiClient:
    return ApiClient(url, timeout=5, max_connections=1)


async def answered_gets(answer: Answer, times: int) -> Server:
    """``times`` GETs one after another, each answered 200; the server that answered them."""
    async with serving(answer) as (server, url), client(url) as api:
        for _ in range(times):
            assert (await api.get("/x")).status_code == 200
    return server


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[tuple[Server, str]]:
    server = Server(answer)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listening.close()


async def test_requests_share_one_kept_connection_and_carry_json_params_and_headers() -> None:
    async with serving(ok) as (server, url), ApiClient(url, timeout=5, max_connections=4) as api:
        first = await api.request(
            "POST", "/orders", json={"sku": "A"}, headers={"Idempotency-Key": "k1"}
        )
        second = await api.get("/orders/o-1", params={"wait_ms": 250, "to": "2026-12-06"})
        third = await api.post("/orders/o-1/place")
    assert server.connections == 1
    assert [s.request_line for s in server.requests] == [
        "POST /orders HTTP/1.1",
        "GET /orders/o-1?wait_ms=250&to=2026-12-06 HTTP/1.1",
        "POST /orders/o-1/place HTTP/1.1",
    ]
    assert json.loads(server.requests[0].body) == {"sku": "A"}
    assert server.requests[0].headers["idempotency-key"] == "k1"
    assert server.requests[0].headers["content-type"] == "application/json"
    assert server.requests[2].headers["content-length"] == "0"
    assert (first.status_code, first.is_success, first.json()) == (200, True, {"n": 12})
    assert second.headers.get("x-read-model-stale") == "a"
    assert second.headers.get("X-READ-MODEL-STALE") == "a"
    assert third.json() == {"n": 0}


async def test_a_chunked_answer_and_a_problem_are_read_whole() -> None:
    async def chunked(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        if seen.request_line.startswith("GET /chunked"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'4\r\n{"a"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
            )
        else:
            problem = b'{"type": "about:blank", "title": "Too Many Requests"}'
            writer.write(reply(429, problem, "Retry-After: 1"))
        await writer.drain()
        return True

    async with serving(chunked) as (server, url), client(url) as api:
        whole = await api.get("/chunked")
        refused = await api.get("/limited")
    assert whole.json() == {"a": 1}
    assert (refused.status_code, refused.is_success) == (429, False)
    assert refused.headers.get("Retry-After") == "1"
    assert "Too Many Requests" in refused.text
    assert server.connections == 1


async def test_connection_close_means_a_new_connection_next_time() -> None:
    async def closing(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(reply(200, b"{}", "Connection: close"))
        await writer.drain()
        return False

    server = await answered_gets(closing, 3)
    assert server.connections == 3


async def test_a_kept_connection_the_server_closed_is_replaced_without_an_error() -> None:
    async def one_per_connection(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        # The first request of a connection is answered (without saying it will close); the
        # next one on it is read and the connection closed unanswered: a server's idle timeout
        # crossing a request on the wire.
        if seen.on_connection > 0:
            return False
        writer.write(reply(200))
        await writer.drain()
        return True

    server = await answered_gets(one_per_connection, 4)
    assert server.connections == 4
    assert len(server.requests) == 7  # 3 cut on a kept connection, each sent again on a new one


async def test_a_fresh_connection_cut_before_an_answer_is_a_transport_error() -> None:
    async def cut(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        return False

    async with serving(cut) as (server, url), ApiClient(url, timeout=5, max_connections=1) as api:
        with pytest.raises(httpx.ReadError):
            await api.post("/orders", json={})
    assert len(server.requests) == 1  # sent once: a command's retry is the caller's decision


async def test_no_answer_in_time_is_a_read_timeout() -> None:
    release = asyncio.Event()

    async def silent(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        return False

    async with serving(silent) as (_, url), ApiClient(url, timeout=0.05, max_connections=1) as api:
        with pytest.raises(httpx.ReadTimeout):
            await api.get("/slow")
        release.set()


async def test_nothing_listening_is_a_connect_error() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    async with ApiClient(f"http://127.0.0.1:{port}", timeout=5, max_connections=1) as api:
        with pytest.raises(httpx.ConnectError):
            await api.get("/x")


async def test_concurrent_requests_use_at_most_max_connections() -> None:
    gate, three_arrived = asyncio.Event(), asyncio.Event()

    async def held(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 3:
            three_arrived.set()
        await gate.wait()
        return await ok(seen, writer)

    async with serving(held) as (server, url), ApiClient(url, timeout=5, max_connections=3) as api:
        requests = [asyncio.create_task(api.get(f"/x{n}")) for n in range(10)]
        await asyncio.wait_for(three_arrived.wait(), 5)
        gate.set()
        answers = await asyncio.gather(*requests)
    assert [a.status_code for a in answers] == [200] * 10
    assert server.most_open == 3
    assert server.connections == 3
