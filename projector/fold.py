"""Fold a batch of events into one projection version's documents: pure code, no I/O.

Given the documents a batch affects (as read), the events are folded into them in log order, in
memory. An event at or below the version's checkpoint was taken already and is left out; an
event at or below a document's ``_position`` was applied to it already (a re-delivery) and
changes nothing. The result (``Fold``) says what each event changed, where the checkpoint may go
once those changes are written, and the event the version failed on, if any; writing is
``projector.dispatch``'s business.

A handler that raises is retried a few times (projections are pure code, so this mostly guards
against flukes), then the version stops *before* that event with the failure recorded; what the
events before it did is kept. An event an operator parked for that projection is skipped instead
(``Fold.skipped`` says which, to be logged): it is on record in ``dead_letters``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.projection import EventEnvelope, Projection
from shared.contract.read_models import POSITION_FIELD, FailedEvent
from shared.contract.versioned_events import EventMetadata, EventRegistry
from shared.ports.document_store import Document
from shared.ports.event_store import RecordedEvent
from shared.process.logging_setup import correlation_id

HANDLER_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Change:
    """One event's effect on one document: the document after, and the one before (``base``;
    None: there was none)."""

    document_id: str
    document: Document
    base: Document | None


@dataclass(frozen=True, slots=True)
class Applied:
    """An event the version took, and what it changed (None: nothing)."""

    event: RecordedEvent
    change: Change | None


@dataclass(frozen=True, slots=True)
class Fold:
    """What a batch does to one version: the events it applies, in order, with their changes;
    where its checkpoint may go once they are written (``position``, ``last_event_at``); the
    event it failed on, if any; and the parked events skipped (with why they still fail)."""

    applied: tuple[Applied, ...]
    position: int
    last_event_at: datetime | None
    failure: FailedEvent | None = None
    skipped: tuple[tuple[RecordedEvent, str], ...] = ()

    def stopped_at(self, index: int, failure: FailedEvent, start: Target) -> Fold:
        """Only the events before ``applied[index]``, and the version fails on that one
        (``start``: the version this fold began from)."""
        kept = self.applied[:index]
        last = kept[-1].event if kept else None
        return Fold(
            applied=kept,
            position=last.position if last else start.position,
            last_event_at=last.recorded_at if last else start.last_event_at,
            failure=failure,
            skipped=self.skipped,
        )

    def final_changes(self) -> list[Change]:
        """One change per changed document: its last state, from the position it was read
        with (that of its first change)."""
        firsts: dict[str, Change] = {}
        lasts: dict[str, Document] = {}
        for item in self.applied:
            if item.change is not None:
                firsts.setdefault(item.change.document_id, item.change)
                lasts[item.change.document_id] = item.change.document
        return [Change(key, document, firsts[key].base) for key, document in lasts.items()]

    def event_changes(self) -> list[Change | None]:
        """The change of each applied event, in order (to find the event whose document
        MongoDB refuses)."""
        return [item.change for item in self.applied]


class Decoder:
    """Reads each event of a batch at most once, whatever number of versions need it."""

    def __init__(self, registry: EventRegistry) -> None:
        self._registry = registry
        self._cache: dict[UUID, EventEnvelope | str] = {}

    def envelope(self, event: RecordedEvent) -> EventEnvelope | str:
        """The envelope, or why the event cannot be read."""
        cached = self._cache.get(event.event_id)
        if cached is None:
            cached = self._decode(event)
            self._cache[event.event_id] = cached
        return cached

    def _decode(self, event: RecordedEvent) -> EventEnvelope | str:
        try:
            metadata = EventMetadata.from_json(event.metadata)
            payload = self._registry.deserialize(event.type, event.data, metadata)
        except Exception as error:  # any undecodable event is that event's fault
            return f"cannot read event: {type(error).__name__}: {error}"
        return EventEnvelope(
            event=payload,
            metadata=metadata,
            event_id=event.event_id,
            stream=event.stream,
            revision=event.revision,
            position=event.position,
            recorded_at=event.recorded_at,
        )


def change_of(
    projection: Projection, documents: Mapping[str, Document], envelope: EventEnvelope
) -> Change | None:
    """What ``envelope`` changes among ``documents`` (by ``_id``; absent: no such document):
    None if nothing, or if the document is at or past the event already."""
    document_id = projection.document_id(envelope)
    if document_id is None:
        return None
    document = documents.get(document_id)
    previous = None if document is None else document.get(POSITION_FIELD)
    if previous is not None and envelope.position <= previous:
        return None  # applied already: a re-delivery
    after = projection.apply(document, envelope)
    if after is None:
        return None
    after = {**after, "_id": document_id, POSITION_FIELD: envelope.position}
    return Change(document_id, after, document)


def _handle(
    projection: Projection, documents: Mapping[str, Document], envelope: EventEnvelope
) -> tuple[Change | None, str, int]:
    """What the handler changes; on failure, the last error and the attempts made."""
    error = ""
    token = correlation_id.set(envelope.metadata.correlation_id)
    try:
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                return change_of(projection, documents, envelope), "", attempt
            except Exception as raised:  # a projection's bug, or an event it cannot take
                error = f"{type(raised).__name__}: {raised}"
    finally:
        correlation_id.reset(token)
    return None, error, HANDLER_ATTEMPTS


def failed_event(event: RecordedEvent, error: str, attempts: int, now: datetime) -> FailedEvent:
    return FailedEvent(
        event_id=event.event_id,
        stream=event.stream,
        revision=event.revision,
        position=event.position,
        event_type=event.type,
        error=error,
        attempts=attempts,
        failed_at=now,
    )


def events_for(
    batch: Batch, target: Target, decoder: Decoder
) -> Iterable[tuple[RecordedEvent, EventEnvelope | str | None]]:
    """The batch's events past the version's checkpoint; with their envelope (or why it cannot
    be read) if the version handles their type."""
    handles = target.projection.event_types
    for event in batch.events:
        if event.position <= target.position:
            continue  # already applied (a re-delivery, or the subscription started lower)
        yield event, decoder.envelope(event) if event.type in handles else None


def document_ids(batch: Batch, target: Target, decoder: Decoder) -> list[str]:
    """The ``_id`` of every document the batch may change in the version, each once."""
    ids: dict[str, None] = {}
    for _, envelope in events_for(batch, target, decoder):
        if isinstance(envelope, EventEnvelope):
            try:
                document_id = target.projection.document_id(envelope)
            except Exception:  # the fold reports it, on this event
                continue
            if document_id is not None:
                ids[document_id] = None
    return list(ids)


def fold(
    batch: Batch,
    target: Target,
    documents: Mapping[str, Document],
    *,
    decoder: Decoder,
    parked: frozenset[UUID],
    now: datetime,
) -> Fold:
    """What ``batch`` does to ``target`` whose affected documents, as read, are ``documents``
    (left as they are); ``now`` dates a failure."""
    current = dict(documents)
    applied: list[Applied] = []
    skipped: list[tuple[RecordedEvent, str]] = []
    position, last_event_at = target.position, target.last_event_at
    for event, envelope in events_for(batch, target, decoder):
        if envelope is None:
            position = event.position
            continue
        change: Change | None
        if isinstance(envelope, str):
            change, error, attempts = None, envelope, 1
        else:
            change, error, attempts = _handle(target.projection, current, envelope)
        if error and event.event_id in parked:
            skipped.append((event, error))
            position = event.position
            continue
        if error:
            failure = failed_event(event, error, attempts, now)
            folded = Fold(tuple(applied), position, last_event_at, skipped=tuple(skipped))
            return folded.stopped_at(len(applied), failure, target)
        if change is not None:
            current[change.document_id] = change.document
        applied.append(Applied(event, change))
        position, last_event_at = event.position, event.recorded_at
    if batch.checkpoint is not None and batch.checkpoint > position:
        position = batch.checkpoint
    return Fold(tuple(applied), position, last_event_at, skipped=tuple(skipped))
