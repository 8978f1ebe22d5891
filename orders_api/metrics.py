"""The API's Prometheus metrics (``GET /metrics``), in a registry of its own per app instance.

Everything is prefixed ``orders_api_``. The projector daemon serves its own metrics
(``projector_*``, on ``PROJECTOR_METRICS_PORT``): those count what the daemon itself did (events
received, batches, outages). The ``orders_api_projection_*`` gauges here are what the shared
status documents say about each projection, read at scrape time, so they are right whichever
process (daemon, rebuild, operator) last moved a projection.

Commands and queries are counted by ``metrics_middleware`` from the route that answered and the
response it sent, so the routers need no instrumentation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    generate_latest,
)

from projector.facade import PROJECTION_STATES, ProjectionStatus

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# What an answer's status means, as the ``outcome`` label: a small, fixed set of values.
OUTCOMES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    409: "conflict",
    412: "precondition_failed",
    413: "too_large",
    422: "invalid",
    503: "unavailable",
}


def outcome_of(status: int) -> str:
    """``success`` for 2xx/3xx; otherwise the kind of error (see ``OUTCOMES``)."""
    if status < 400:
        return "success"
    return OUTCOMES.get(status, "client_error" if status < 500 else "server_error")


class ApiMetrics:
    """Every metric of one API instance (tests build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.commands = Counter(
            "orders_api_commands",
            "Commands answered, by command (route name) and outcome",
            ["command", "outcome"],
            registry=registry,
        )
        self.command_seconds = Histogram(
            "orders_api_command_duration_seconds",
            "Time to answer a command, by command",
            ["command"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queries = Counter(
            "orders_api_queries",
            "Queries answered, by endpoint (route name) and outcome",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.query_seconds = Histogram(
            "orders_api_query_duration_seconds",
            "Time to answer a query (including any read-your-writes wait), by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.consistent_reads = Counter(
            "orders_api_read_your_writes_requests",
            "Queries that sent X-Consistency-Token (each waits, up to wait_ms, only if the "
            "read model is behind the token)",
            ["endpoint"],
            registry=registry,
        )
        self.stale_reads = Counter(
            "orders_api_read_your_writes_stale",
            "Answers sent with X-Read-Model-Stale: true (the wait for the token timed out)",
            ["endpoint"],
            registry=registry,
        )
        self.waiting = Gauge(
            "orders_api_read_your_writes_waiting",
            "Queries waiting for the read model to reach their token right now",
            registry=registry,
        )
        self._projection_gauges(registry)

    def _projection_gauges(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, help_text: str) -> Gauge:
            return Gauge(
                f"orders_api_projection_{name}", help_text, ["projection"], registry=registry
            )

        self.version = gauge("version", "Active version of the projection (the one queries read)")
        self.checkpoint = gauge("checkpoint_position", "Checkpoint position of the active version")
        self.head = gauge(
            "head_position", "Position of the newest event of its types (NaN: unknown)"
        )
        self.lag_events = gauge(
            "lag_events",
            "Events of its types not yet applied; approximate beyond a bound (NaN: unknown)",
        )
        self.lag_seconds = gauge(
            "lag_seconds", "Age of the oldest event not yet applied; 0 when live (NaN: unknown)"
        )
        self.failed = gauge("failed", "1 while the active version is stopped on a failing event")
        self.rebuilding = gauge("rebuilding", "1 while a new version is being built")
        self.dead_letters = gauge("dead_letters", "Events parked by an operator (dead letters)")
        self.state = Enum(
            "orders_api_projection_state",
            "State of the active version",
            ["projection"],
            states=list(PROJECTION_STATES),
            registry=registry,
        )
        self.status_ok = Gauge(
            "orders_api_projection_status_ok",
            "1 when the projection gauges come from a successful reading (at most "
            "PROJECTION_REPORT_TTL_S old); 0 when the stores did not answer in time (the gauges "
            "then keep their previous values)",
            registry=registry,
        )

    def observe(
        self,
        kind: str,
        name: str,
        status: int,
        seconds: float,
        *,
        consistency_token: bool = False,
        stale: bool = False,
    ) -> None:
        """One answered request of ``kind`` "command" or "query" from the route ``name``."""
        if kind == "command":
            self.commands.labels(name, outcome_of(status)).inc()
            self.command_seconds.labels(name).observe(seconds)
            return
        self.queries.labels(name, outcome_of(status)).inc()
        self.query_seconds.labels(name).observe(seconds)
        if consistency_token:
            self.consistent_reads.labels(name).inc()
        if stale:
            self.stale_reads.labels(name).inc()

    def update_projections(
        self, statuses: Sequence[ProjectionStatus], dead_letters: Mapping[str, int]
    ) -> None:
        """Refresh the projection gauges from ``projection_statuses`` and the number of events
        parked per projection (``dead_letter_counts``)."""
        for status in statuses:
            name = status.name
            self.version.labels(name).set(status.version)
            self.checkpoint.labels(name).set(status.checkpoint_position)
            self.head.labels(name).set(_number(status.head_position))
            self.lag_events.labels(name).set(_number(status.lag_events))
            self.lag_seconds.labels(name).set(_number(status.lag_seconds))
            self.failed.labels(name).set(1 if status.error is not None else 0)
            self.rebuilding.labels(name).set(1 if status.rebuilding is not None else 0)
            self.dead_letters.labels(name).set(dead_letters.get(name, 0))
            self.state.labels(name).state(status.state)
        self.status_ok.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)
