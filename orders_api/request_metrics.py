"""Counting commands and queries as they are answered (plain ASGI, outside the error handlers).

The kind of a request comes from the tag of the route that serves it ("commands" or
"queries"), its name from the route's name (``create_order``, ``get_order``...), its outcome
from the status sent. Read-your-writes is read off the headers: ``X-Consistency-Token`` on the
request, ``X-Read-Model-Stale: true`` on the response. A request rejected before routing (a
body over the size limit) is matched here against the command and query routes, so it still
counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orders_api.metrics import ApiMetrics

KINDS = {"commands": "command", "queries": "query"}


def _route_of(scope: Scope, metered: Sequence[APIRoute]) -> APIRoute | None:
    route = scope.get("route")
    if isinstance(route, APIRoute):
        return route
    # Not routed (rejected by a middleware first): match the metered routes by path and method.
    path, root = scope.get("path", ""), scope.get("root_path", "")
    path = path[len(root) :] if root and path.startswith(root) else path
    for candidate in metered:
        if scope.get("method") in (candidate.methods or ()) and candidate.path_regex.match(path):
            return candidate
    return None


def _kind(route: APIRoute) -> str | None:
    for tag in route.tags:
        if isinstance(tag, str) and tag in KINDS:
            return KINDS[tag]
    return None


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case, as ASGI names are) in raw headers."""
    for key, value in headers:
        if key == name:
            return value
    return None


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, metered: Sequence[APIRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.metered = tuple(metered)
        # The metered routes' kinds, worked out once (keyed by identity: ``metered`` keeps
        # the routes alive, so their ids stay theirs).
        self._kinds = {id(route): _kind(route) for route in self.metered}

    def _kind_of(self, route: APIRoute) -> str | None:
        return self._kinds[id(route)] if id(route) in self._kinds else _kind(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler
        stale = False

        async def observe_start(message: Message) -> None:
            nonlocal status, stale
            if message["type"] == "http.response.start":
                status = int(message["status"])
                stale = _header(message.get("headers", ()), b"x-read-model-stale") == b"true"
            await send(message)

        try:
            await self.app(scope, receive, observe_start)
        finally:
            route = _route_of(scope, self.metered)
            kind = self._kind_of(route) if route is not None else None
            if route is not None and kind is not None:
                self.metrics.observe(
                    kind,
                    route.name,
                    status,
                    time.perf_counter() - started,
                    consistency_token=_header(scope["headers"], b"x-consistency-token") is not None,
                    stale=stale,
                )
