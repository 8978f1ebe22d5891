"""ASGI middlewares of the API: request correlation and the request body size limit.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so the correlation context variable set here is
the one the route and every log line of the request see, and so bodies are counted as they
stream in rather than trusted from ``Content-Length``.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.process.logging_setup import correlation_id
from shared.web.problem_catalogue import CONTENT_TOO_LARGE
from shared.web.problem_details import ProblemError, problem_response

CORRELATION_HEADER = "X-Correlation-ID"
# Printable, no spaces or quotes: the id lands in logs and event metadata verbatim.
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
log = logging.getLogger(__name__)


def choose_correlation_id(header: str | None) -> str:
    """The client's id when it is well-formed; otherwise a new one (never a rejection: the id
    only serves tracing, and a client that sends a bad one still deserves an answer)."""
    if header is not None and _CORRELATION_ID.fullmatch(header):
        return header
    if header is not None:
        log.debug("ignoring malformed %s header", CORRELATION_HEADER)
    return uuid.uuid4().hex


class CorrelationIdMiddleware:
    """Chooses the request's correlation id, exposes it to the request's context, echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = choose_correlation_id(Headers(scope=scope).get(CORRELATION_HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = chosen
            await send(message)

        token = correlation_id.set(chosen)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answers 413 when a request body exceeds ``max_bytes``.

    The body is read (and counted chunk by chunk, whatever ``Content-Length`` says) before the
    app runs, then replayed to it; a body over the limit is never handed to a route. Bodies here
    are small JSON documents, so holding one in memory is cheaper than streaming it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except _TooLarge:
            await self._reject(scope, receive, send)
            return
        except _Disconnected:
            return  # the client left mid-body: nothing to answer, and no half body to act on
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = ProblemError(
            CONTENT_TOO_LARGE,
            f"the request body is larger than {self.max_bytes} bytes",
            headers={"Connection": "close"},
        )
        response = problem_response(Request(scope), error)
        await response(scope, receive, send)
