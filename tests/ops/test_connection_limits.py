"""The bounds on what a client may hold, against a real ``orders-api`` process over raw sockets:
connections that never send a complete request head are closed, a stalled body (a chunk of
FFFFFFFFFFFFFFFFFFFF bytes) is answered 408, connections beyond API_MAX_CONNECTIONS and
requests beyond API_LIMIT_CONCURRENCY are refused with 503 + Retry-After, and each kind of
refusal is a throttled warning line, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orders_api.server import (
    ACCEPT_OUT_OF_RESOURCES,
    BODY_TIMEOUT_TYPE,
    RESERVED_FDS,
    TOO_MANY_CONNECTIONS_TYPE,
    TOO_MANY_REQUESTS_TYPE,
    Refusals,
    connection_cap,
    quiet_accept_errors,
)
from shared.process.throttled_log import ThrottledWarning
from shared.web.problem_details import PROBLEM_JSON, PROBLEM_TYPE_BASE
from tests.conftest import unique
from tests.ops.support import closed_port

BIN = Path(sys.executable).parent
WAIT_S = 60.0  # bound of every wait for a condition; never reached when the code is right
POLL_S = 0.05
LOW_SOFT_LIMIT = 512


@dataclass
class RunningApi:
    port: int
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S)

    def log(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def running_api(eventstore_uri: str, mongo_uri: str, **settings: str) -> Iterator[RunningApi]:
    """``orders-api`` on a free port with ``settings`` in its environment; stopped with SIGTERM
    on exit, after which ``lines`` holds everything it logged."""
    port = closed_port()
    env = {
        **os.environ,
        "EVENTSTORE_URI": eventstore_uri,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": unique("limits").replace("-", "_")[:40],
        "LOG_FORMAT": "text",
        **settings,
    }
    env.pop("ADMIN_TOKEN", None)
    process = subprocess.Popen(
        # A soft open-files limit below the hard one, as many shells set; exec keeps the pid.
        [
            "/bin/sh",
            "-c",
            f'ulimit -Sn {LOW_SOFT_LIMIT} 2>/dev/null; exec "$0" "$@"',
            str(BIN / "orders-api"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    api = RunningApi(port, process)
    arrived: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            arrived.put(line)
        arrived.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while not any("orders-api ready on" in line for line in api.lines):
            line = arrived.get(timeout=WAIT_S)
            if line is None:
                raise AssertionError("orders-api exited:\n" + api.log())
            api.lines.append(line)
        yield api
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT_S)
        while (line := arrived.get(timeout=WAIT_S)) is not None:
            api.lines.append(line)


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    received = b""
    with connection:
        while True:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def read_head(connection: socket.socket) -> bytes:
    """One response head (up to the blank line), the connection left open."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(1)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received


def problem_of(response: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, problem body) of a raw HTTP/1.1 response."""
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    assert headers["content-type"] == PROBLEM_JSON, response
    return int(status_line.split()[1]), headers, json.loads(body)


def answered_ok(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=WAIT_S).status_code == 200
    except httpx.TransportError:
        return False


def wait_until_answered(port: int) -> int:
    """Wait until a new connection is answered 200; returns how many tries were not."""
    deadline = time.monotonic() + WAIT_S
    tries = 0
    while not answered_ok(port):
        assert time.monotonic() < deadline, "the API never answered again"
        tries += 1
        time.sleep(POLL_S)
    return tries


def refusal_lines(api: RunningApi, setting: str) -> list[str]:
    return [line for line in api.lines if setting in line]


def soft_open_files(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-files limit in /proc")


# --- against a running API ------------------------------------------------------------------

CHUNKED_FOREVER = (
    b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    b'Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n{"customer_id": '
)
SHORT_BODY = (
    b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"customer_id": '
)


def test_slow_clients_are_cut_off(eventstore_uri: str, mongo_uri: str) -> None:
    with running_api(
        eventstore_uri, mongo_uri, API_HEADER_TIMEOUT_S="0.5", API_BODY_TIMEOUT_S="0.5"
    ) as api:
        # A connection that sends nothing, and one that never finishes its head: closed.
        idle = api.connect()
        partial = api.connect()
        partial.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
        assert read_until_closed(idle) == b""
        assert read_until_closed(partial) == b""

        # A body that never arrives (chunked or with a Content-Length): 408, then closed.
        for stalled in (CHUNKED_FOREVER, SHORT_BODY):
            connection = api.connect()
            connection.sendall(stalled)
            status, headers, problem = problem_of(read_until_closed(connection))
            assert (status, headers["connection"]) == (408, "close")
            assert problem == problem | {
                "status": 408,
                "type": PROBLEM_TYPE_BASE + BODY_TIMEOUT_TYPE,
            }

        assert answered_ok(api.port)  # everybody else is served as usual
        soft, hard = soft_open_files(api.process.pid)
        assert soft == hard  # raised from LOW_SOFT_LIMIT at start-up

    log = api.log()
    assert "Traceback" not in log, log
    assert 1 <= len(refusal_lines(api, "API_HEADER_TIMEOUT_S")) <= 2, log
    assert 1 <= len(refusal_lines(api, "API_BODY_TIMEOUT_S")) <= 2, log


def test_connections_and_requests_beyond_the_caps_are_refused(
    eventstore_uri: str, mongo_uri: str
) -> None:
    cap = 3
    with running_api(
        eventstore_uri,
        mongo_uri,
        API_MAX_CONNECTIONS=str(cap),
        API_LIMIT_CONCURRENCY="2",
        API_HEADER_TIMEOUT_S="300",  # idle connections stay for the whole test
        API_BODY_TIMEOUT_S="300",
    ) as api:
        idle = [api.connect() for _ in range(cap)]
        # Accepted in the order they connected: these come after the cap is full.
        refused = [read_until_closed(api.connect()) for _ in range(2)]
        for response in refused:
            status, headers, problem = problem_of(response)
            assert status == 503 and int(headers["retry-after"]) >= 1
            assert problem["type"] == PROBLEM_TYPE_BASE + TOO_MANY_CONNECTIONS_TYPE
        for connection in idle:
            connection.close()
        refusals = len(refused) + wait_until_answered(api.port)  # once the server saw them go

        # Two requests in progress (their bodies not sent yet, the app waiting for them)...
        waiting = [api.connect() for _ in range(2)]
        for connection in waiting:
            connection.sendall(
                b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
            )
            # The app asked for the body: the request is in progress.
            assert read_head(connection).startswith(b"HTTP/1.1 100")
        # ... and a third is refused at once.
        third = api.connect()
        third.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
        status, headers, problem = problem_of(read_until_closed(third))
        assert status == 503 and int(headers["retry-after"]) >= 1, problem
        assert problem["type"] == PROBLEM_TYPE_BASE + TOO_MANY_REQUESTS_TYPE
        for connection in waiting:
            connection.sendall(b"{}")
            assert read_head(connection).startswith(b"HTTP/1.1 422")
            connection.close()
        wait_until_answered(api.port)

    log = api.log()
    assert "Traceback" not in log, log
    # At most one line per refusal, however many (throttling itself: see the test below).
    assert 1 <= len(refusal_lines(api, "API_MAX_CONNECTIONS")) <= refusals, log
    assert len(refusal_lines(api, "API_LIMIT_CONCURRENCY")) >= 1, log


# --- the pieces ------------------------------------------------------------------------------


def test_a_throttled_warning_logs_the_first_then_one_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    logger = logging.getLogger("tests.throttled")
    warning = ThrottledWarning(logger, "refused %d", interval_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="tests.throttled"):
        for n in range(5):
            warning.warn(n)
        now[0] += 10
        warning.warn(99)
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0",
        "refused 99 (4 more like it since the last line)",
    ]
    assert warning.occurrences == 6
    assert all(r.exc_info is None for r in caplog.records)


async def test_accept_errors_are_one_line_not_a_traceback_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    original = loop.get_exception_handler()
    others: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: others.append(context))
    try:
        quiet_accept_errors(loop, Refusals())
        with caplog.at_level(logging.WARNING, logger="orders_api.server"):
            for _ in range(50):  # what asyncio reports while descriptors are exhausted
                loop.call_exception_handler(
                    {"message": ACCEPT_OUT_OF_RESOURCES, "exception": OSError(24, "EMFILE")}
                )
            loop.call_exception_handler({"message": "something else"})
    finally:
        loop.set_exception_handler(original)
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None
    assert [context["message"] for context in others] == ["something else"]


def test_the_connection_cap_leaves_descriptors_for_the_stores(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert connection_cap(2000, resource.RLIM_INFINITY) == 2000
    assert connection_cap(2000, 2000 + RESERVED_FDS) == 2000
    with caplog.at_level(logging.WARNING, logger="orders_api.server"):
        assert connection_cap(2000, 1024) == 1024 - RESERVED_FDS
    assert "API_MAX_CONNECTIONS=2000" in caplog.text
