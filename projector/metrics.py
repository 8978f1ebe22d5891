"""Prometheus metrics of the daemon, served on ``PROJECTOR_METRICS_HOST``:``PROJECTOR_METRICS_PORT``
(port 0 = off) by ``projector.metrics_server`` (bounded: slow clients cannot hold it).

Each ``ProjectorMetrics`` has its own registry, so several runners in one process (tests) do
not collide on the global one.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.metrics_server import DEFAULT_HOST, MetricsServer


class ProjectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "projector_events", "Events received from the subscription", registry=self.registry
        )
        self.batches = Counter("projector_batches", "Batches applied", registry=self.registry)
        self.applied = Counter(
            "projector_events_applied",
            "Events each projection version has taken in (applied, or not its concern)",
            ["projection", "version"],
            registry=self.registry,
        )
        self._positions: dict[tuple[str, int], int] = {}
        self.position = Gauge(
            "projector_checkpoint_position",
            "Checkpoint position of each projection version",
            ["projection", "version"],
            registry=self.registry,
        )
        self.failed = Gauge(
            "projector_projection_failed",
            "1 while the projection is stopped on a failing event",
            ["projection"],
            registry=self.registry,
        )
        self.failing = Gauge(
            "projector_projection_failing",
            "1 while the projection is failing: an error that is neither an outage nor an "
            "event's fault, retried with backoff (the reason is in projector status)",
            ["projection"],
            registry=self.registry,
        )
        self.outages = Counter(
            "projector_store_outages",
            "Times a store was unavailable (each retry counts)",
            registry=self.registry,
        )
        self.available = Gauge(
            "projector_stores_available",
            "0 while the projector waits for an unavailable store",
            registry=self.registry,
        )
        self.available.set(1)
        self.leases = Gauge(
            "projector_leases_held",
            "Projections whose lease this instance holds (it feeds those only)",
            registry=self.registry,
        )
        self.takeovers = Counter(
            "projector_lease_takeovers",
            "Leases this instance took over from another instance whose lease had expired",
            ["projection"],
            registry=self.registry,
        )
        self.server: MetricsServer | None = None

    def batch(self, batch: Batch, targets: Sequence[Target]) -> None:
        self.available.set(1)
        self.batches.inc()
        self.events.inc(len(batch.events))
        for target in targets:
            key = (target.name, target.version)
            # First batch of a run: counts from the batch's start (a version whose checkpoint
            # was ahead of the others' skips a few events that then count once too many).
            before = self._positions.get(key, -1)
            if target.position > before:
                taken = sum(1 for e in batch.events if before < e.position <= target.position)
                self.applied.labels(target.name, str(target.version)).inc(taken)
            self._positions[key] = target.position
            self.position.labels(target.name, str(target.version)).set(target.position)
            self.failed.labels(target.name).set(0 if target.failure is None else 1)
            self.failing.labels(target.name).set(1 if target.standing.failing else 0)

    def leases_held(self, count: int) -> None:
        self.leases.set(count)

    def lease_taken_over(self, projection: str) -> None:
        self.takeovers.labels(projection).inc()

    def outage(self, reason: str) -> None:
        self.available.set(0)
        self.outages.inc()

    def serve(self, port: int, host: str = DEFAULT_HOST) -> None:
        """Expose ``/metrics`` on ``host:port`` from a background thread (no-op for port 0).
        A bind error (port taken, unknown host) is raised here."""
        if port:
            self.server = MetricsServer(self.registry, host, port)
            self.server.start()

    def close(self) -> None:
        """Stop serving ``/metrics`` (a no-op when not serving)."""
        if self.server is not None:
            self.server.close()
            self.server = None
