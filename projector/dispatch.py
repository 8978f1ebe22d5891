"""Apply one batch of events to a set of projection versions: plan, then write.

Planning is pure: each event is read once (deserialized and upcast) and offered to every target
whose checkpoint is below its position; the target's projection turns it into write operations.
Writing sends one bulk write per target collection. Nothing here touches checkpoints: the runner
saves them only once the writes went through, so a crash in between re-delivers events whose
operations are conditional on ``_position`` and change nothing the second time.

A handler that raises is retried a few times (projections are pure code, so this mostly guards
against flukes), then its target stops *before* that event with the failure recorded. Events an
operator parked for that projection are skipped with a warning instead: they are on record in
``dead_letters``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from projector.batching import Batch
from projector.checkpoint_store import FailedEvent, Target
from projector.failures import write_or_find_culprit
from projector.projection import EventEnvelope, Projection
from shared.document_store import DocumentStore, WriteOp
from shared.event_store import RecordedEvent
from shared.events import EventMetadata, EventRegistry
from shared.logging_setup import correlation_id

HANDLER_ATTEMPTS = 3
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventOps:
    event: RecordedEvent
    ops: Sequence[WriteOp]


@dataclass
class Plan:
    """What one batch does to one target: the writes, and the progress once they are done."""

    target: Target
    outcome: Target
    applied: list[EventOps] = field(default_factory=list)

    def stop_at(self, index: int, failure: FailedEvent) -> None:
        """Keep the writes before ``applied[index]``; the target fails on that event."""
        kept = self.applied[:index]
        self.applied = kept
        previous = kept[-1].event.position if kept else self.target.position
        self.outcome = replace(
            self.outcome,
            position=previous,
            state="failed",
            failure=failure,
            last_event_at=kept[-1].event.recorded_at if kept else self.target.last_event_at,
        )


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


def _handle(projection: Projection, envelope: EventEnvelope) -> tuple[Sequence[WriteOp], str, int]:
    """The handler's operations; on failure, the last error and the attempts made."""
    error = ""
    token = correlation_id.set(envelope.metadata.correlation_id)
    try:
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                return list(projection.apply(envelope)), "", attempt
            except Exception as raised:
                error = f"{type(raised).__name__}: {raised}"
    finally:
        correlation_id.reset(token)
    return (), error, HANDLER_ATTEMPTS


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

    def plan(
        self,
        batch: Batch,
        targets: Sequence[Target],
        parked: Mapping[str, frozenset[UUID]],
    ) -> list[Plan]:
        decoder = Decoder(self._registry)
        return [
            self._plan_one(batch, target, decoder, parked.get(target.name, frozenset()))
            for target in targets
            if target.accepting
        ]

    def _plan_one(
        self, batch: Batch, target: Target, decoder: Decoder, parked: frozenset[UUID]
    ) -> Plan:
        plan = Plan(target, replace(target))
        outcome = plan.outcome
        handles = target.projection.event_types
        for event in batch.events:
            if event.position <= target.position:
                continue  # already applied (a re-delivery, or the subscription started lower)
            if event.type not in handles:
                outcome.position = event.position
                continue
            envelope = decoder.envelope(event)
            ops: Sequence[WriteOp]
            if isinstance(envelope, str):
                ops, error, attempts = (), envelope, 1
            else:
                ops, error, attempts = _handle(target.projection, envelope)
            if error and event.event_id in parked:
                log.warning(
                    "projection %s v%d: skipping parked event %s at %d (%s)",
                    target.name,
                    target.version,
                    event.event_id,
                    event.position,
                    error,
                )
                outcome.position = event.position
                continue
            if error:
                plan.stop_at(len(plan.applied), failed_event(event, error, attempts, self._clock()))
                return plan
            plan.applied.append(EventOps(event, ops))
            outcome.position = event.position
            outcome.last_event_at = event.recorded_at
        if batch.checkpoint is not None and batch.checkpoint > outcome.position:
            outcome.position = batch.checkpoint
        return plan

    async def write(self, plans: Sequence[Plan]) -> None:
        """One bulk write per target collection, the collections in parallel. StoreUnavailable
        propagates (the batch is retried); another write error pins the failing event."""
        outcomes = await asyncio.gather(
            *(self._write_one(plan) for plan in plans if plan.applied), return_exceptions=True
        )
        # Every write finished (none left running in the background); then report the outage.
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]

    async def _write_one(self, plan: Plan) -> None:
        groups = [list(item.ops) for item in plan.applied]
        culprit = await write_or_find_culprit(self._store, plan.target.collection, groups)
        if culprit is not None:
            index, error = culprit
            event = plan.applied[index].event
            plan.stop_at(index, failed_event(event, error, 1, self._clock()))
