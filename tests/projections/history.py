"""Order events as the projector receives them: envelopes with increasing global positions
and per-stream revisions from 0, at chosen times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from projector.fold import change_of
from projector.projection import EventEnvelope, Projection
from shared.contract.order_events import Address, order_stream
from shared.contract.versioned_events import Event, EventMetadata, EventRegistry
from shared.ports.document_store import Document
from shared.ports.event_store import RecordedEvent

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
HOME = Address(line1="1 Main St", city="Springfield", postal_code="12345", country="US")
WORK = Address(
    line1="Floor 3", line2="99 Dock Rd", city="Rotterdam", postal_code="3011", country="NL"
)


@dataclass
class History:
    """Records events of several orders in one global order, like ``$all``."""

    clock: datetime = T0
    position: int = 0
    envelopes: list[EventEnvelope] = field(default_factory=list)
    revisions: dict[str, int] = field(default_factory=dict)

    def record(self, event: Event, *, at: datetime | None = None) -> EventEnvelope:
        order_id: UUID = getattr(event, "order_id")  # noqa: B009 - every order event has one
        stream = order_stream(order_id)
        revision = self.revisions.get(stream, -1) + 1
        self.revisions[stream] = revision
        self.position += 137  # positions grow but are not contiguous
        when = at if at is not None else self.clock
        self.clock = max(self.clock, when) + timedelta(minutes=1)
        envelope = EventEnvelope(
            event=event,
            metadata=EventMetadata(occurred_at=when, command_id=uuid4()),
            event_id=uuid4(),
            stream=stream,
            revision=revision,
            position=self.position,
            recorded_at=when + timedelta(milliseconds=5),
        )
        self.envelopes.append(envelope)
        return envelope


def fold(
    projection: Projection,
    envelopes: list[EventEnvelope],
    documents: dict[str, Document] | None = None,
) -> dict[str, Document]:
    """The documents (by ``_id``) ``envelopes`` change, starting from ``documents``, folded in
    memory the way the dispatcher does (``_position`` set, re-delivered events skipped)."""
    current = dict(documents or {})
    changed: dict[str, Document] = {}
    for envelope in envelopes:
        change = change_of(projection, current, envelope)
        if change is not None:
            current[change.document_id] = changed[change.document_id] = change.document
    return changed


def recorded(envelope: EventEnvelope) -> RecordedEvent:
    """The event as the event store would hand it to the projector."""
    return RecordedEvent(
        event_id=envelope.event_id,
        stream=envelope.stream,
        revision=envelope.revision,
        position=envelope.position,
        type=envelope.event.event_type,
        data=EventRegistry.serialize(envelope.event),
        metadata=envelope.metadata.to_json(),
        recorded_at=envelope.recorded_at,
    )
