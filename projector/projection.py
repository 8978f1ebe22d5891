"""What a projection is: pure code folding events into the documents of its read model.

Every event changes at most one document of a projection: ``document_id`` says which. A handler,
keyed by event type and registered once, takes that document as it stands (None: there is none
yet) and returns its new state, or None to leave it as it is. Handlers never change the document
they are given (the dispatcher keeps it to compare-and-set on it, and retries a failed handler
with it): they build a new one, sharing the parts they do not change.

A projection knows nothing of subscriptions, batching, checkpoints or MongoDB; the dispatcher
reads the documents a batch touches, folds the batch's events into them and writes each one
back once, with ``_position`` set to the position of the last event applied to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.contract.versioned_events import Event, EventMetadata
from shared.ports.document_store import Document, IndexSpec

Handler = Callable[[Document | None, "EventEnvelope"], Document | None]


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


class Projection(ABC):
    """Base of a read model. Subclasses set ``name``, say which document an event affects and
    register a handler per event type."""

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

    @abstractmethod
    def document_id(self, envelope: EventEnvelope) -> str | None:
        """The ``_id`` of the one document ``envelope`` affects; None if it affects none."""

    def apply(self, document: Document | None, envelope: EventEnvelope) -> Document | None:
        """The document after ``envelope`` (without ``_position``, which the dispatcher sets);
        None when the event leaves it unchanged or this projection ignores its type."""
        handler = self._handlers.get(envelope.event.event_type)
        return handler(document, envelope) if handler is not None else None
