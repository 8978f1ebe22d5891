"""Apply one batch of events to a set of projection versions: read, fold, then write.

For each target, the batch's events are read once (deserialized and upcast, whatever the number
of targets) and the documents they affect are read with one query per collection. The events are
then folded into those documents in log order, in memory: an event at or below a document's
``_position`` was applied already (a re-delivery) and is skipped. Writing replaces each changed
document once, compare-and-set on the ``_position`` it was read with (``compare_and_set``): a
document that changed since it was read is never overwritten with stale state. A write that loses
its compare-and-set is not done: the documents are read again and the batch folded into them
again (another writer, e.g. a killed predecessor's bulk write that the server finishes late, moved
them; its events are skipped by position). Nothing here touches checkpoints: the runner saves
them only once every write took effect, so a crash in between re-delivers events that each
document then skips.

Errors that are neither outages nor an event's fault (MongoDB refusing a read, documents that
keep moving) do not stop the others: the target's plan carries the ``trouble`` and the runner
pauses that target and retries it later.

A handler that raises is retried a few times (projections are pure code, so this mostly guards
against flukes), then its target stops *before* that event with the failure recorded; what the
events before it did is still written. Events an operator parked for that projection are skipped
with a warning instead: they are on record in ``dead_letters``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from projector.batching import Batch
from projector.checkpoint_store import FailedEvent, Target
from projector.failures import write_or_find_culprit
from projector.lifecycle import Trigger
from projector.projection import EventEnvelope, Projection
from shared.contract.read_models import POSITION_FIELD
from shared.contract.versioned_events import EventMetadata, EventRegistry
from shared.ports.document_store import Document, DocumentStore, ReplaceOne, UpdateOne, WriteOp
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import RecordedEvent
from shared.process.logging_setup import correlation_id

HANDLER_ATTEMPTS = 3
# Rounds of read, fold and write for one batch while documents keep moving under it; more means
# something else keeps writing this version, and the target is paused as failing.
WRITE_ROUNDS = 5
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One event's effect on one document: its ``_position`` before (None: no document) and
    the document after."""

    document_id: str
    previous: int | None
    document: Document

    def op(self) -> WriteOp:
        return compare_and_set(self.document_id, self.previous, self.document)


@dataclass(frozen=True, slots=True)
class Applied:
    """An event the target took, and what it changed (None: nothing)."""

    event: RecordedEvent
    change: Change | None


def compare_and_set(document_id: str, position: int | None, document: Document) -> WriteOp:
    """Write ``document`` only while the stored one is still at ``position``.

    None means there was no document: insert it unless one appeared since (``$setOnInsert``
    leaves an existing document alone; a conditional upsert would do the same, but the
    embedded MongoDB server takes over twice as long to insert that way). Otherwise replace it
    only if its ``_position`` is unchanged: a document written since it was read matches
    nothing and is left as it is.
    """
    if position is None:
        fields = {key: value for key, value in document.items() if key != "_id"}
        return UpdateOne({"_id": document_id}, {"$setOnInsert": fields}, upsert=True)
    return ReplaceOne({"_id": document_id, POSITION_FIELD: position}, document)


@dataclass
class Plan:
    """What one batch does to one target: the changes, and the progress once they are written."""

    target: Target
    outcome: Target
    applied: list[Applied] = field(default_factory=list)
    trouble: str | None = None

    def stop_at(self, index: int, failure: FailedEvent) -> None:
        """Keep the changes before ``applied[index]``; the target fails on that event."""
        kept = self.applied[:index]
        self.applied = kept
        previous = kept[-1].event.position if kept else self.target.position
        self.outcome = replace(
            self.target,
            position=previous,
            last_event_at=kept[-1].event.recorded_at if kept else self.target.last_event_at,
        ).moved(Trigger.EVENT_FAILED, failure=failure)

    def final_ops(self) -> list[WriteOp]:
        """One replacement per changed document: its last state, conditional on the position
        it was read with."""
        firsts: dict[str, int | None] = {}
        lasts: dict[str, Document] = {}
        for item in self.applied:
            change = item.change
            if change is not None:
                firsts.setdefault(change.document_id, change.previous)
                lasts[change.document_id] = change.document
        return [compare_and_set(key, firsts[key], lasts[key]) for key in lasts]

    def event_ops(self) -> list[list[WriteOp]]:
        """Per applied event, the replacement of the state it left (to find the event whose
        document MongoDB refuses)."""
        return [[] if item.change is None else [item.change.op()] for item in self.applied]


class Decoder:
    """Reads each event of a batch at most once, whatever number of targets need it."""

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
        except Exception as error:
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
            except Exception as raised:
                error = f"{type(raised).__name__}: {raised}"
    finally:
        correlation_id.reset(token)
    return None, error, HANDLER_ATTEMPTS


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
    return Change(document_id, previous, after)


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


class Dispatcher:
    def __init__(
        self,
        document_store: DocumentStore,
        registry: EventRegistry,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = document_store
        self._registry = registry
        self._clock = clock

    async def apply(
        self,
        batch: Batch,
        targets: Sequence[Target],
        parked: Mapping[str, frozenset[UUID]],
    ) -> list[Plan]:
        """Read, fold and write the batch for every accepting target, the targets in parallel.
        StoreUnavailable propagates once every target's work has finished (the batch is
        retried); any other error becomes that target's ``trouble``."""
        decoder = Decoder(self._registry)
        accepting = [target for target in targets if target.accepting]
        outcomes = await asyncio.gather(
            *(
                self._apply_one(batch, target, decoder, parked.get(target.name, frozenset()))
                for target in accepting
            ),
            return_exceptions=True,
        )
        plans: list[Plan] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            plans.append(outcome)
        return plans

    async def _apply_one(
        self, batch: Batch, target: Target, decoder: Decoder, parked: frozenset[UUID]
    ) -> Plan:
        ids = self._document_ids(batch, target, decoder)
        for _ in range(WRITE_ROUNDS):
            try:
                documents = await self._load(target, ids)
                plan = self._plan_one(batch, target, decoder, parked, documents)
                written = await write_or_find_culprit(
                    self._store, target.collection, plan.final_ops(), plan.event_ops
                )
            except StoreUnavailable:
                raise
            except Exception as error:
                return Plan(target, target, trouble=f"{type(error).__name__}: {error}")
            if written.complete and written.culprit is not None:
                index, error_text = written.culprit
                plan.stop_at(
                    index, failed_event(plan.applied[index].event, error_text, 1, self._clock())
                )
            if written.complete:
                return plan
            log.info(
                "projection %s v%d: documents moved since they were read; reading them again",
                target.name,
                target.version,
            )
        trouble = (
            f"documents kept changing while this batch was written ({WRITE_ROUNDS} rounds): "
            "is another process writing this projection version?"
        )
        return Plan(target, target, trouble=trouble)

    def _events_for(
        self, batch: Batch, target: Target, decoder: Decoder
    ) -> Iterable[tuple[RecordedEvent, EventEnvelope | str | None]]:
        """The batch's events past the target's checkpoint; with their envelope if the target
        handles their type."""
        handles = target.projection.event_types
        for event in batch.events:
            if event.position <= target.position:
                continue  # already applied (a re-delivery, or the subscription started lower)
            yield event, decoder.envelope(event) if event.type in handles else None

    def _document_ids(self, batch: Batch, target: Target, decoder: Decoder) -> list[str]:
        ids: dict[str, None] = {}
        for _, envelope in self._events_for(batch, target, decoder):
            if isinstance(envelope, EventEnvelope):
                try:
                    document_id = target.projection.document_id(envelope)
                except Exception:  # the fold reports it, on this event
                    continue
                if document_id is not None:
                    ids[document_id] = None
        return list(ids)

    async def _load(self, target: Target, ids: Sequence[str]) -> dict[str, Document]:
        if not ids:
            return {}
        found = await self._store.find_by_ids(target.collection, ids)
        return {document["_id"]: document for document in found}

    def _plan_one(
        self,
        batch: Batch,
        target: Target,
        decoder: Decoder,
        parked: frozenset[UUID],
        documents: dict[str, Document],
    ) -> Plan:
        plan = Plan(target, target)
        position, last_event_at = target.position, target.last_event_at
        for event, envelope in self._events_for(batch, target, decoder):
            if envelope is None:
                position = event.position
                continue
            change: Change | None
            if isinstance(envelope, str):
                change, error, attempts = None, envelope, 1
            else:
                change, error, attempts = _handle(target.projection, documents, envelope)
            if error and event.event_id in parked:
                log.warning(
                    "projection %s v%d: skipping parked event %s at %d (%s)",
                    target.name,
                    target.version,
                    event.event_id,
                    event.position,
                    error,
                )
                position = event.position
                continue
            if error:
                plan.stop_at(len(plan.applied), failed_event(event, error, attempts, self._clock()))
                return plan
            if change is not None:
                documents[change.document_id] = change.document
            plan.applied.append(Applied(event, change))
            position, last_event_at = event.position, event.recorded_at
        if batch.checkpoint is not None and batch.checkpoint > position:
            position = batch.checkpoint
        plan.outcome = replace(target, position=position, last_event_at=last_event_at)
        return plan
