"""The daemon's own Prometheus metrics follow its batches."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.lifecycle import Trigger
from projector.metrics import ProjectorMetrics
from projector.projection import EventEnvelope, Projection
from shared.ports.event_store import RecordedEvent


class Named(Projection):
    name = "named"

    def document_id(self, envelope: EventEnvelope) -> str | None:
        return None


def at(position: int) -> RecordedEvent:
    return RecordedEvent(
        uuid.uuid4(), "order-x", 0, position, "ItemRemoved", b"{}", b"{}", datetime.now(UTC)
    )


def test_events_applied_count_per_projection_version_what_its_checkpoint_passed() -> None:
    metrics = ProjectorMetrics()
    ahead = Target(Named(), 1, position=20)
    behind = Target(Named(), 2, position=10)
    metrics.batch(Batch([at(5), at(10)]), [behind])
    metrics.batch(Batch([at(15), at(20), at(25)]), [ahead, behind])
    behind = replace(behind, position=25)
    metrics.batch(Batch([at(25)]), [behind])  # nothing new for either
    metrics.batch(Batch([at(30)]), [Target(Named(), 2, position=30)])

    applied = metrics.registry.get_sample_value
    assert applied("projector_events_applied_total", {"projection": "named", "version": "2"}) == 4
    assert applied("projector_events_applied_total", {"projection": "named", "version": "1"}) == 2
    assert applied("projector_events_total") == 7


def test_failed_and_failing_are_told_apart() -> None:
    metrics = ProjectorMetrics()
    target = Target(Named(), 1, position=5)
    sample = metrics.registry.get_sample_value
    metrics.batch(Batch([at(5)]), [target])
    assert sample("projector_projection_failing", {"projection": "named"}) == 0
    assert sample("projector_projection_failed", {"projection": "named"}) == 0

    # Paused after an error it will retry: failing, not failed.
    target = replace(
        target.moved(Trigger.TROUBLED, reason="DocumentStoreError: refused"),
        paused_until=datetime.now(UTC),
    )
    metrics.batch(Batch([at(6)]), [target])
    assert sample("projector_projection_failing", {"projection": "named"}) == 1
    assert sample("projector_projection_failed", {"projection": "named"}) == 0

    target = replace(target.moved(Trigger.CAUGHT_UP), paused_until=None)
    metrics.batch(Batch([at(7)]), [target])
    assert sample("projector_projection_failing", {"projection": "named"}) == 0
