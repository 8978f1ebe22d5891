"""The app factory: the composition root of the API process.

``create_app`` is the only place that builds store clients (in the lifespan, which waits for
them with bounded retries, opens them and closes them again) and wires the buses, the
read-your-writes watcher, the metrics, the projection report of health and metrics, and the
background rebuilds (stopped before the stores close). Stores passed in are used as they are
and left open: their owner (a test, the benchmark) manages them. The admin router is mounted
only when ``ADMIN_TOKEN`` is set.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp

from orders_api import admin, health, metrics_route, projections
from orders_api.deps import DropsProjectionReportAfterAction
from orders_api.errors import install_error_handlers
from orders_api.metrics import ApiMetrics
from orders_api.middleware import BodySizeLimitMiddleware, CorrelationIdMiddleware
from orders_api.openapi import install_openapi
from orders_api.projection_report import ProjectionReport
from orders_api.rebuild_jobs import RebuildJobs
from orders_api.request_metrics import RequestMetricsMiddleware
from orders_api.settings import ApiSettings
from read_side.bootstrap import build_query_bus
from read_side.consistency import CheckpointWatcher
from read_side.http import router as query_router
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStore
from shared.process.logging_setup import register_secret
from shared.process.startup import wait_for_store
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

# FastAPI's native OpenTelemetry looks up the global providers on every request; this service
# installs no OpenTelemetry SDK (its metrics are Prometheus, its traces correlation ids in the
# logs), so the look-ups could never find one.
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# A request must not wait on a stopped store for long: MongoDB is given up on after a short
# server selection and socket wait, two attempts, and (both stores) STORE_TIMEOUT_S overall.
MONGO_SERVER_SELECTION_TIMEOUT_MS = 1000
MONGO_CONNECT_TIMEOUT_MS = 1000
MONGO_SOCKET_TIMEOUT_MS = 3000
MONGO_ATTEMPTS = 2


async def _open_event_store(settings: ApiSettings, stack: AsyncExitStack) -> EventStore:
    store = EsdbEventStore(settings.eventstore_uri, retry_budget_s=settings.store_timeout_s)
    stack.push_async_callback(store.close)
    label = f"eventstore at {settings.eventstore_uri}"  # wait_for_store redacts credentials
    await wait_for_store(label, store.ping, settings.startup_wait_s)
    return store


async def _open_document_store(settings: ApiSettings, stack: AsyncExitStack) -> DocumentStore:
    store = MotorDocumentStore(
        settings.mongo_uri,
        settings.mongo_database,
        server_selection_timeout_ms=MONGO_SERVER_SELECTION_TIMEOUT_MS,
        connect_timeout_ms=MONGO_CONNECT_TIMEOUT_MS,
        socket_timeout_ms=MONGO_SOCKET_TIMEOUT_MS,
        attempts=MONGO_ATTEMPTS,
        call_timeout_s=settings.store_timeout_s,
    )
    stack.push_async_callback(store.close)
    label = f"mongodb at {settings.mongo_uri} (database {settings.mongo_database})"
    await wait_for_store(label, store.ping, settings.startup_wait_s)
    return store


def _register_secrets(settings: ApiSettings) -> None:
    """Keep the admin token and any password inside a store URI out of every log line."""
    if settings.admin_token is not None:
        register_secret(settings.admin_token.get_secret_value())
    for uri in (settings.eventstore_uri, settings.mongo_uri):
        with contextlib.suppress(ValueError):
            register_secret(urlsplit(uri).password)


class OrdersApi(FastAPI):
    """FastAPI with the correlation and metrics middlewares outside Starlette's error
    middleware, so even an unexpected 500 is logged with the request's correlation id, echoes
    it, and is counted."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = RequestMetricsMiddleware(
            super().build_middleware_stack(), self.state.metrics, self.state.metered_routes
        )
        return CorrelationIdMiddleware(inner)


def create_app(
    settings: ApiSettings,
    *,
    event_store: EventStore | None = None,
    document_store: DocumentStore | None = None,
) -> FastAPI:
    """The API, wired to the given stores or (when None) to clients built from ``settings``."""
    metrics = ApiMetrics()  # a registry per app: several apps in one process do not collide
    _register_secrets(settings)
    admin_state = "enabled" if settings.admin_token is not None else "disabled (no ADMIN_TOKEN)"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            events = event_store or await _open_event_store(settings, stack)
            documents = document_store or await _open_document_store(settings, stack)
            app.state.event_store = events
            app.state.document_store = documents
            app.state.command_bus = build_command_bus(
                events,
                max_attempts=settings.command_max_attempts,
                cached_orders=settings.command_cache_orders,
            )
            watcher = CheckpointWatcher(documents, max_waiters=settings.read_wait_max_waiters)
            stack.push_async_callback(watcher.close)
            metrics.waiting.set_function(lambda: watcher.waiting)
            app.state.query_bus = build_query_bus(documents, watcher=watcher)
            app.state.rebuild_jobs = RebuildJobs(
                documents, events, retire_grace_s=settings.projector_retire_grace_s
            )
            stack.push_async_callback(app.state.rebuild_jobs.close)  # before the stores close
            app.state.projection_report = ProjectionReport(
                documents, events, ttl_s=settings.projection_report_ttl_s
            )
            stack.push_async_callback(app.state.projection_report.close)
            log.info("stores reachable; admin endpoints %s", admin_state)
            yield

    app = OrdersApi(
        title="Orders service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.metered_routes = [
        route
        for route in (*command_router.routes, *query_router.routes)
        if isinstance(route, APIRoute)
    ]
    # The read side cannot import these settings (it never imports orders_api): plain values.
    app.state.read_wait_ms_default = settings.read_wait_ms_default
    app.state.read_wait_ms_max = settings.read_wait_ms_max
    install_error_handlers(app)
    app.include_router(command_router)
    app.include_router(query_router)
    app.include_router(health.router)
    app.include_router(projections.router)
    app.include_router(metrics_route.router)
    if settings.admin_token is not None:  # without a token the admin paths do not exist
        app.include_router(admin.router, dependencies=[DropsProjectionReportAfterAction])
    install_openapi(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
