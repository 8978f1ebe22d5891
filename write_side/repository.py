"""Orders over the event store port: load = read the stream and fold, save = append at the
revision that was loaded, ``LoadedOrder.after_append`` = the order after a save, without a read.

Event ids are deterministic (see ``event_ids``), so appending the same decision twice at the same
revision is absorbed by the store (EventStoreDB's idempotent re-append) instead of writing twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from shared.contract.order_events import build_order_event_registry, order_stream
from shared.contract.versioned_events import Event, EventMetadata, EventRegistry
from shared.ports.event_store import (
    NO_STREAM,
    AppendResult,
    EventStoreReader,
    EventStoreWriter,
    ExpectedRevision,
    NewEvent,
    StreamNotFound,
)
from write_side.commands import OrderCommand
from write_side.domain.order import Order, fold

# Fixed forever: changing it would make a retried command look like a new one.
_EVENT_ID_NAMESPACE = UUID("0c4e2b8a-9d1f-4a57-b3e6-2f8c71d5a904")
# Per-delivery fields: a retry of the same request may carry new ones.
_NOT_PART_OF_REQUEST = frozenset(
    {
        "command_id",
        "timestamp",
        "expected_version",
        "idempotency_key",
        "correlation_id",
        "causation_id",
    }
)


def request_fingerprint(command: OrderCommand) -> str:
    """Digest of what the command asks for, without the fields that vary between deliveries."""
    body = command.model_dump_json(exclude=set(_NOT_PART_OF_REQUEST))
    return hashlib.sha256(f"{type(command).__name__}:{body}".encode()).hexdigest()[:32]


def event_ids(command: OrderCommand, count: int) -> list[UUID]:
    """Ids for the ``count`` events ``command`` decided.

    With an idempotency key they derive from (order id, key, request, index): two deliveries of
    the same request produce the same ids, so EventStoreDB absorbs the second append even when
    both run at once; a different request under the same key gets different ids and conflicts.
    Without a key they derive from the command id (stable across conflict retries).
    """
    if command.idempotency_key is not None:
        seed = f"{command.order_id}/{command.idempotency_key}/{request_fingerprint(command)}"
    else:
        seed = f"command/{command.command_id}"
    return [uuid.uuid5(_EVENT_ID_NAMESPACE, f"{seed}/{index}") for index in range(count)]


def event_metadata(command: OrderCommand, event: Event) -> EventMetadata:
    """Metadata stored with each event. A command with no causation is caused by itself."""
    own_id = str(command.command_id)
    return EventMetadata(
        schema_version=type(event).schema_version,
        command_id=command.command_id,
        correlation_id=command.correlation_id or own_id,
        causation_id=command.causation_id or own_id,
        occurred_at=command.timestamp,
        idempotency_key=command.idempotency_key,
    )


@dataclass(frozen=True, slots=True)
class AppliedRequest:
    """What an idempotency key already wrote: its event ids and the result of its last event."""

    event_ids: tuple[UUID, ...]
    revision: int
    position: int


@dataclass(frozen=True, slots=True)
class LoadedOrder:
    """An order as read: ``version`` and ``position`` are those of its last event (None when the
    stream does not exist); ``applied`` maps idempotency keys to what they wrote."""

    order_id: UUID
    state: Order | None
    version: int | None
    position: int | None
    applied: Mapping[str, AppliedRequest] = field(default_factory=dict)

    @property
    def expected(self) -> ExpectedRevision:
        """The revision to append at so that nothing written since the load is overwritten."""
        return NO_STREAM if self.version is None else self.version

    def after_append(
        self, command: OrderCommand, events: Sequence[Event], result: AppendResult
    ) -> LoadedOrder:
        """The order once ``events``, decided for ``command`` on this state, were appended with
        ``result``: what loading it right after the append would give, without the read."""
        applied = self.applied
        key = command.idempotency_key
        if key is not None:
            ids = tuple(event_ids(command, len(events)))
            applied = {**applied, key: AppliedRequest(ids, result.revision, result.position)}
        return LoadedOrder(
            order_id=self.order_id,
            state=fold(events, self.state),
            version=result.revision,
            position=result.position,
            applied=applied,
        )


class OrderEventStore(EventStoreReader, EventStoreWriter, Protocol):
    """What the repository needs from the event store: reading and appending streams."""


class OrderRepository:
    def __init__(self, store: OrderEventStore, registry: EventRegistry | None = None) -> None:
        self._store = store
        self._registry = registry or build_order_event_registry()

    async def load(self, order_id: UUID) -> LoadedOrder:
        """Read ``order-<id>`` and fold it, upcasting old schemas. A missing stream loads as an
        order that does not exist (state None)."""
        try:
            recorded = await self._store.read_stream(order_stream(order_id))
        except StreamNotFound:
            return LoadedOrder(order_id=order_id, state=None, version=None, position=None)
        events: list[Event] = []
        applied: dict[str, AppliedRequest] = {}
        for record in recorded:
            metadata = EventMetadata.from_json(record.metadata)
            events.append(self._registry.deserialize(record.type, record.data, metadata))
            key = metadata.idempotency_key
            if key is not None:
                earlier = applied.get(key)
                ids = (*earlier.event_ids, record.event_id) if earlier else (record.event_id,)
                applied[key] = AppliedRequest(ids, record.revision, record.position)
        last = recorded[-1]
        return LoadedOrder(
            order_id=order_id,
            state=fold(events),
            version=last.revision,
            position=last.position,
            applied=applied,
        )

    async def save(
        self, command: OrderCommand, expected: ExpectedRevision, events: Sequence[Event]
    ) -> AppendResult:
        """Append ``events`` decided for ``command`` at ``expected``. Raises ConcurrencyError when
        the stream moved on (unless this exact append was already made: then its result)."""
        ids = event_ids(command, len(events))
        new = [
            NewEvent(
                event_id=event_id,
                type=event.event_type,
                data=self._registry.serialize(event),
                metadata=event_metadata(command, event).to_json(),
            )
            for event_id, event in zip(ids, events, strict=True)
        ]
        return await self._store.append(order_stream(command.order_id), expected, new)
