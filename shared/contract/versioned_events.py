"""Versioned domain events, their metadata, and the registry that reads old schemas as new ones.

An event is a pydantic model with a stable ``event_type`` name and an integer ``schema_version``.
The registry maps (type, version) to the current model; **upcasters** turn the stored payload of
an older version into the next version's payload, step by step, before validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from shared.errors import ServiceError

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class Event(BaseModel):
    """Base of every domain event: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


class EventMetadata(BaseModel):
    """Stored beside every event's data (EventStoreDB custom metadata, JSON)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1
    command_id: UUID | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    occurred_at: AwareDatetime | None = None
    idempotency_key: str | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> EventMetadata:
        """Lenient: missing or malformed metadata reads as defaults (v1, no ids)."""
        if not raw:
            return cls()
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return cls()


def utc_now() -> datetime:
    return datetime.now(UTC)


class EventRegistry:
    """Maps stored (type, schema version) to the current event model, upcasting old payloads."""

    def __init__(self) -> None:
        self._models: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, model: type[Event]) -> None:
        """Register the current model of an event type; a type may be registered once."""
        if model.event_type in self._models:
            raise ValueError(f"event type {model.event_type!r} is already registered")
        self._models[model.event_type] = model

    def register_upcaster(self, event_type: str, from_version: int, step: Upcaster) -> None:
        """``step`` turns a payload of ``from_version`` into one of ``from_version + 1``."""
        key = (event_type, from_version)
        if key in self._upcasters:
            raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
        self._upcasters[key] = step

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self._models)

    def model_for(self, event_type: str) -> type[Event]:
        try:
            return self._models[event_type]
        except KeyError:
            raise UnknownEventType(f"unknown event type {event_type!r}") from None

    def upcast(self, event_type: str, version: int, payload: Payload) -> Payload:
        """Bring ``payload`` stored at ``version`` up to the current schema version."""
        current = self.model_for(event_type).schema_version
        if version > current:
            raise UnknownEventType(
                f"{event_type} v{version} is newer than this service knows (v{current})"
            )
        while version < current:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnknownEventType(f"no upcaster for {event_type} v{version}")
            payload = step(payload)
            version += 1
        return payload

    def deserialize(self, event_type: str, data: bytes, metadata: EventMetadata) -> Event:
        """Read stored JSON ``data`` of ``event_type`` as the current model."""
        payload = json.loads(data) if data else {}
        if not isinstance(payload, Mapping):
            raise UnknownEventType(f"{event_type} payload is not a JSON object")
        upcast = self.upcast(event_type, metadata.schema_version, dict(payload))
        return self.model_for(event_type).model_validate(upcast)

    @staticmethod
    def serialize(event: Event) -> bytes:
        return event.model_dump_json().encode()


class UnknownEventType(ServiceError):
    """A stored event has a type or schema version the registry does not know."""
