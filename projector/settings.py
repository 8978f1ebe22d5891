"""Settings of the projector process, read from the environment (pydantic-settings).

The stores and logging come from ``shared.process.settings_base.StoreSettings``; a bad value
stops the process at start-up (exit code 2) naming the variable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from projector.leases import DEFAULT_LEASE_S
from projector.metrics_server import DEFAULT_HOST
from shared.process.settings_base import StoreSettings, load_or_exit


class ProjectorSettings(StoreSettings):
    """Everything the projector process reads from its environment."""

    projector_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    # How long a batch lingers after its first event for more; 0: a batch takes what the
    # subscription has delivered and goes (under load batches grow while a write is in flight).
    projector_batch_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    # 0 turns the Prometheus endpoint off (tests run several projectors at once).
    projector_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9100
    # Loopback unless the operator opens it (compose publishes it from a container: 0.0.0.0).
    projector_metrics_host: Annotated[str, Field(min_length=1, max_length=253)] = DEFAULT_HOST
    projector_startup_wait_s: Annotated[float, Field(ge=0, le=600)] = 60.0
    projector_max_backoff_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    # How long a retired version stays readable after a rebuild switched away from it, so
    # queries that resolved it just before the switch still find their documents.
    projector_retire_grace_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    # Several instances share the projections through leases (projector.leases): this
    # instance's name (default <hostname>:<pid>) and how long a lease lasts without a heartbeat
    # (how long a dead instance's projections wait before another instance takes them over).
    projector_instance_id: Annotated[
        str | None, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@/+-]+$")
    ] = None
    projector_lease_s: Annotated[float, Field(ge=1, le=600)] = DEFAULT_LEASE_S

    @property
    def batch_wait_s(self) -> float:
        return self.projector_batch_ms / 1000


def load_settings_or_exit(**overrides: object) -> ProjectorSettings:
    """Read the environment; on a bad value print which variables are wrong and exit 2."""
    return load_or_exit(ProjectorSettings, "projector", **overrides)
