"""Serving the API with uvicorn, with a bound on everything a client can hold.

uvicorn alone lets a client hold a connection forever by never finishing its request head (its
h11 protocol has no such timeout) or its body (a chunk announced as ``FFFFFFFFFFFFFFFFFFFF``
bytes is waited for until it comes), and lets enough idle connections exhaust the process's
file descriptors, after which asyncio logs a traceback for every failed ``accept()``. Here:

- at most ``API_MAX_CONNECTIONS`` connections are open; a new one beyond it is answered 503 and
  closed at once, before it is read, so descriptors stay free for the stores;
- a connection must send its complete request head within ``API_HEADER_TIMEOUT_S`` (counted
  from the moment it opens or finishes its previous response), else it is closed;
- a request body must arrive within ``API_BODY_TIMEOUT_S`` of its head, else 408 and close;
- at most ``API_LIMIT_CONCURRENCY`` requests are in progress; beyond it 503 problem+json with
  ``Retry-After``. Our own check rather than uvicorn's ``limit_concurrency``, whose bare
  text/plain 503 has no ``Retry-After`` and which counts idle keep-alive connections as load;
- the open-files soft limit is raised to the hard limit at start-up, and a failed ``accept()``
  is one throttled warning line instead of a traceback each.

Every refusal logs through ``ThrottledWarning``: the first at once, then one line per interval.

The event loop is asyncio's own, named explicitly (uvicorn's "auto" would switch to uvloop
whenever it happens to be installed): ``quiet_accept_errors`` relies on how asyncio reports a
failed ``accept()`` (uvloop leaves that to libuv, which can close the listening socket). uvloop
and httptools were measured on the command path (``benchmarks/command_throughput.py``) and were
not faster there: the API's time goes to FastAPI, the event store's gRPC calls and pydantic,
not to the loop or the HTTP parser.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

import h11
import uvicorn
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from orders_api import problems
from orders_api.settings import ApiSettings
from shared.process.throttled_log import ThrottledWarning
from shared.web.problem_details import PROBLEM_JSON, ProblemError, problem_body, problem_response

log = logging.getLogger("orders_api.server")
READY_LINE = "orders-api ready on http://%s:%d"
RETRY_AFTER_S = 1
# Descriptors kept free for everything but client connections: the MongoDB pool (motor's
# default is 100 connections), the event store's channel, the listening socket, log files.
RESERVED_FDS = 200
ACCEPT_OUT_OF_RESOURCES = "socket.accept() out of system resource"
# The refusals answered here, below the app (catalogue entries; the OpenAPI document shows
# them on every operation).
TOO_MANY_CONNECTIONS_TYPE = problems.TOO_MANY_CONNECTIONS.name
TOO_MANY_REQUESTS_TYPE = problems.TOO_MANY_REQUESTS_IN_PROGRESS.name
BODY_TIMEOUT_TYPE = problems.REQUEST_BODY_TIMEOUT.name


@dataclass
class Refusals:
    """One throttled warning per kind of refusal (their ``occurrences`` count every one)."""

    connections: ThrottledWarning = field(
        default_factory=lambda: ThrottledWarning(
            log, "refused a connection: %d connections are open already (API_MAX_CONNECTIONS)"
        )
    )
    heads: ThrottledWarning = field(
        default_factory=lambda: ThrottledWarning(
            log, "closed a connection: no complete request head within %ss (API_HEADER_TIMEOUT_S)"
        )
    )
    bodies: ThrottledWarning = field(
        default_factory=lambda: ThrottledWarning(
            log, "answered 408 and closed: the request body took over %ss (API_BODY_TIMEOUT_S)"
        )
    )
    requests: ThrottledWarning = field(
        default_factory=lambda: ThrottledWarning(
            log, "refused a request with 503: %d are in progress already (API_LIMIT_CONCURRENCY)"
        )
    )
    accepts: ThrottledWarning = field(
        default_factory=lambda: ThrottledWarning(
            log, "cannot accept connections: %s (out of file descriptors or memory)"
        )
    )


def _raw_problem(error: ProblemError) -> bytes:
    """A complete HTTP/1.1 problem response that closes the connection, written before (or
    instead of) parsing the request, so it cannot go through the app."""
    body = json.dumps(problem_body(error)).encode()
    retry = f"Retry-After: {RETRY_AFTER_S}\r\n" if "Retry-After" in error.kind.headers else ""
    head = (
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n{retry}"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


TOO_MANY_CONNECTIONS = _raw_problem(
    ProblemError(
        problems.TOO_MANY_CONNECTIONS,
        "the server has as many connections open as it accepts; retry later",
    )
)
BODY_TIMEOUT = _raw_problem(
    ProblemError(problems.REQUEST_BODY_TIMEOUT, "the request body did not arrive in time")
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and head and body deadlines. The deadlines
    follow the client's h11 state: IDLE means a head is awaited, SEND_BODY a body; while the
    app works on a complete request neither runs (a read may wait for its token)."""

    max_connections: ClassVar[int]
    header_timeout_s: ClassVar[float]
    body_timeout_s: ClassVar[float]
    refusals: ClassVar[Refusals]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refused = True
            self.transport = transport
            self.refusals.connections.warn(len(self.connections))
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        super().connection_made(transport)
        self._follow_deadlines()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadlines()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_deadlines()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_deadlines()

    def _follow_deadlines(self) -> None:
        if self.transport.is_closing():
            self._cancel_deadlines()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            self._cancel_body_deadline()
            if self._head_deadline is None:  # one deadline per head: trickling cannot extend it
                self._head_deadline = self.loop.call_later(
                    self.header_timeout_s, self._head_too_slow
                )
        elif state is h11.SEND_BODY:
            self._cancel_head_deadline()
            if self._body_deadline is None:
                self._body_deadline = self.loop.call_later(self.body_timeout_s, self._body_too_slow)
        else:
            self._cancel_deadlines()

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.refusals.heads.warn(self.header_timeout_s)
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        self.refusals.bodies.warn(self.body_timeout_s)
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(BODY_TIMEOUT)
            # The app, still waiting for the body, now sees the client leave and answers nothing.
            cycle.response_started = True
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _cancel_deadlines(self) -> None:
        self._cancel_head_deadline()
        self._cancel_body_deadline()


class ConcurrencyLimit:
    """Answers 503 problem+json with Retry-After while ``limit`` requests are in progress."""

    def __init__(self, app: ASGIApp, limit: int, refusals: Refusals) -> None:
        self.app = app
        self.limit = limit
        self.refusals = refusals
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            self.refusals.requests.warn(self.in_progress)
            error = ProblemError(
                problems.TOO_MANY_REQUESTS_IN_PROGRESS,
                "the server is answering as many requests as it takes at once; retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            await problem_response(Request(scope), error)(scope, receive, send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:  # e.g. macOS refuses an unlimited soft limit
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, error)
    return soft


def connection_cap(requested: int, open_files: int) -> int:
    """``requested``, lowered (with a warning) so connections never exhaust ``open_files``."""
    if open_files == resource.RLIM_INFINITY or requested + RESERVED_FDS <= open_files:
        return requested
    capped = max(1, open_files - RESERVED_FDS)
    log.warning(
        "API_MAX_CONNECTIONS=%d does not fit the open-files limit %d (%d kept for the stores): "
        "accepting at most %d connections",
        requested,
        open_files,
        RESERVED_FDS,
        capped,
    )
    return capped


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, refusals: Refusals) -> None:
    """Log a failed ``accept()`` (asyncio retries it a second later) as one throttled line,
    not a traceback each; every other loop error goes to the handler that was there."""
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_OUT_OF_RESOURCES:
            refusals.accepts.warn(context.get("exception"))
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


class GuardedServer(uvicorn.Server):
    """uvicorn's server with quiet accept errors that says once when it is ready: after the
    lifespan (stores reachable) and after the socket listens, so a client that waits for the
    line can connect at once."""

    def __init__(self, config: uvicorn.Config, refusals: Refusals) -> None:
        super().__init__(config)
        self.refusals = refusals

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        quiet_accept_errors(asyncio.get_running_loop(), self.refusals)
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        for server in self.servers:
            for listening in server.sockets:
                host, port = listening.getsockname()[:2]
                log.info(READY_LINE, _url_host(str(host)), port)
                return


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_server(app: ASGIApp, settings: ApiSettings) -> GuardedServer:
    """The uvicorn server for ``app`` with every limit of ``settings`` applied."""
    refusals = Refusals()
    protocol = type(
        "OrdersApiProtocol",
        (GuardedH11Protocol,),
        {
            "max_connections": connection_cap(
                settings.api_max_connections, raise_open_files_limit()
            ),
            "header_timeout_s": settings.api_header_timeout_s,
            "body_timeout_s": settings.api_body_timeout_s,
            "refusals": refusals,
        },
    )
    config = uvicorn.Config(
        ConcurrencyLimit(app, settings.api_limit_concurrency, refusals),
        host=settings.api_host,
        port=settings.api_port,
        http=protocol,
        loop="asyncio",  # see the module docstring
        backlog=settings.api_backlog,
        timeout_keep_alive=settings.api_keepalive_timeout_s,
        log_config=None,  # keep the process's logging (JSON or text, with correlation ids)
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return GuardedServer(config, refusals)
