"""The app factory: the composition root of the API process.

``create_app`` is the only place that builds store clients (in the lifespan, which opens them
and closes them again) and wires the buses. Stores passed in are used as they are and left open:
their owner (a test, the benchmark) manages them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from orders_api import health
from orders_api.errors import install_error_handlers
from orders_api.middleware import BodySizeLimitMiddleware, CorrelationIdMiddleware
from orders_api.openapi import install_openapi
from orders_api.settings import ApiSettings
from read_side.bootstrap import build_query_bus
from read_side.http import router as query_router
from shared.document_store import DocumentStore
from shared.errors import StoreUnavailable
from shared.esdb_event_store import EsdbEventStore
from shared.event_store import EventStore
from shared.motor_document_store import MotorDocumentStore
from write_side.handlers import build_command_bus
from write_side.http import router as command_router

log = logging.getLogger(__name__)
DESCRIPTION = """\
Orders as an event-sourced service. Commands append events to EventStoreDB; queries read
MongoDB read models kept up to date by the projector.

Every command answers `{order_id, version, position}` with `ETag: "<version>"` (send it back as
`If-Match` to make a command conditional) and `X-Consistency-Token: <position>` (send it to a
query to read your own write). `Idempotency-Key` makes a command safe to repeat. Errors are
RFC 9457 `application/problem+json`.
"""


async def wait_until_reachable(
    name: str, ping: Callable[[], Awaitable[None]], budget_s: float
) -> None:
    """Ping until the store answers, for at most ``budget_s``: start order must not matter."""
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        attempt += 1
        try:
            await ping()
        except StoreUnavailable as error:
            if time.monotonic() >= deadline:
                log.error("%s still unreachable after %.0f s: %s", name, budget_s, error.reason)
                raise
            log.warning("waiting for %s (attempt %d): %s", name, attempt, error.reason)
            await asyncio.sleep(min(2.0, 0.25 * attempt))
        else:
            log.info("%s reachable", name)
            return


async def _open_event_store(settings: ApiSettings, stack: AsyncExitStack) -> EventStore:
    store = EsdbEventStore(settings.eventstore_uri)
    await store.connect()
    stack.push_async_callback(store.close)
    await wait_until_reachable("eventstore", store.ping, settings.startup_wait_s)
    return store


async def _open_document_store(settings: ApiSettings, stack: AsyncExitStack) -> DocumentStore:
    store = MotorDocumentStore(settings.mongo_uri, settings.mongo_database)
    stack.push_async_callback(store.close)
    await wait_until_reachable("mongodb", store.ping, settings.startup_wait_s)
    return store


class OrdersApi(FastAPI):
    """FastAPI with the correlation middleware outside Starlette's error middleware, so even an
    unexpected 500 is logged with the request's correlation id and echoes it."""

    def build_middleware_stack(self) -> ASGIApp:
        return CorrelationIdMiddleware(super().build_middleware_stack())


def create_app(
    settings: ApiSettings,
    *,
    event_store: EventStore | None = None,
    document_store: DocumentStore | None = None,
) -> FastAPI:
    """The API, wired to the given stores or (when None) to clients built from ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            events = event_store or await _open_event_store(settings, stack)
            documents = document_store or await _open_document_store(settings, stack)
            app.state.event_store = events
            app.state.document_store = documents
            app.state.command_bus = build_command_bus(
                events, max_attempts=settings.command_max_attempts
            )
            app.state.query_bus = build_query_bus(documents)
            yield

    app = OrdersApi(
        title="Orders service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # The read side cannot import these settings (it never imports orders_api): plain values.
    app.state.read_wait_ms_default = settings.read_wait_ms_default
    app.state.read_wait_ms_max = settings.read_wait_ms_max
    install_error_handlers(app)
    app.include_router(command_router)
    app.include_router(query_router)
    app.include_router(health.router)
    install_openapi(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
