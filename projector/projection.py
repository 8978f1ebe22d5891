"""What a projection is: pure code from one event to the write operations on its read model.

A projection knows nothing of subscriptions, batching, checkpoints or MongoDB clients; the
runner does that. Handlers are keyed by event type and registered once per projection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.document_store import IndexSpec, WriteOp
from shared.events import Event, EventMetadata

Handler = Callable[["EventEnvelope"], Sequence[WriteOp]]


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """A deserialized (upcast) event with where and when it was recorded."""

    event: Event
    metadata: EventMetadata
    event_id: UUID
    stream: str
    revision: int
    position: int
    recorded_at: datetime

    @property
    def occurred_at(self) -> datetime:
        """When the command happened; the server's record time for events without metadata."""
        return self.metadata.occurred_at or self.recorded_at


class Projection:
    """Base of a read model. Subclasses set ``name`` and register handlers per event type.

    Every operation a handler returns must be conditional on the document's ``_position``
    being lower than ``envelope.position`` (and set it), so a re-delivered event changes
    nothing. Operations name no collection: the runner applies them to the collection of the
    projection version it is building.
    """

    name: ClassVar[str]
    indexes: ClassVar[tuple[IndexSpec, ...]] = ()

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def on(self, event_type: type[Event], handler: Handler) -> None:
        """Register the handler for one event type; registering a type twice is an error."""
        key = event_type.event_type
        if key in self._handlers:
            raise ValueError(f"projection {self.name}: {key} already has a handler")
        self._handlers[key] = handler

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def apply(self, envelope: EventEnvelope) -> Sequence[WriteOp]:
        """The operations for one event; none for event types this projection ignores."""
        handler = self._handlers.get(envelope.event.event_type)
        return handler(envelope) if handler is not None else ()
