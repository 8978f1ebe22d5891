"""Order events as the projector receives them: envelopes with increasing global positions
and per-stream revisions from 0, at chosen times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from projector.projection import EventEnvelope, Projection
from shared.document_store import WriteOp
from shared.events import Event, EventMetadata
from shared.orders_events import Address, order_stream

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


def ops_for(projection: Projection, envelopes: list[EventEnvelope]) -> list[WriteOp]:
    return [op for envelope in envelopes for op in projection.apply(envelope)]
