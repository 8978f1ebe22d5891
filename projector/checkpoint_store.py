"""Checkpoint documents: how far each projection version got, and in what state.

One document per projection version in ``projection_checkpoints`` (``_id`` = the version's
collection name, see ``shared.contract.read_models``). ``position`` is the global position of
the last event applied or scanned; a failed version also records the event it failed on. Only
one process writes a given version's document at a time: the daemon for active versions, the
rebuilder for the version it is building, an operator command for a failed version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from projector.projection import Projection
from shared.contract.read_models import CHECKPOINTS, collection_name
from shared.ports.document_store import DocumentStore, UpdateOne

State = Literal[
    "not_started",
    "catching_up",
    "live",
    "rebuilding",
    "failed",
    "failing",
    "store_unavailable",
    "stopped",
]


class FailedEvent(BaseModel):
    """The event a projection version stopped on, and why."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    stream: str
    revision: int
    position: int = Field(description="Global position of the event that failed")
    event_type: str
    error: str = Field(description="Exception type and message of the last attempt")
    attempts: int
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint document as read back."""

    position: int
    state: State
    last_event_at: datetime | None
    updated_at: datetime | None
    failure: FailedEvent | None
    reason: str | None


def as_utc(value: object) -> datetime | None:
    """BSON dates come back naive (UTC) unless the client is tz-aware; normalise both."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_checkpoint(document: dict[str, Any]) -> CheckpointRecord:
    error = document.get("error")
    failure = FailedEvent.model_validate(error) if isinstance(error, dict) else None
    return CheckpointRecord(
        position=int(document.get("position") or 0),
        state=document.get("state") or "catching_up",
        last_event_at=as_utc(document.get("last_event_at")),
        updated_at=as_utc(document.get("updated_at")),
        failure=failure,
        reason=error if isinstance(error, str) else None,
    )


@dataclass(eq=False)
class Target:
    """One projection version a runner feeds, with its progress as last saved."""

    projection: Projection
    version: int
    position: int = 0
    state: State = "catching_up"
    last_event_at: datetime | None = None
    failure: FailedEvent | None = None
    # While ``failing`` (an error that is neither an outage nor an event's fault): why, how
    # many times in a row, and until when the version gets no events (then it is retried).
    reason: str | None = None
    troubles: int = 0
    paused_until: datetime | None = None

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def collection(self) -> str:
        return collection_name(self.projection.name, self.version)

    @property
    def checkpoint_id(self) -> str:
        return self.collection

    @property
    def accepting(self) -> bool:
        """False once failed (a failed version gets no events until an operator acts) and
        while paused after an error (until the runner retries it)."""
        return self.failure is None and self.paused_until is None

    def restore(self, record: CheckpointRecord | None) -> None:
        if record is None:
            return
        self.position = record.position
        self.state = record.state
        self.last_event_at = record.last_event_at
        self.failure = record.failure

    def progress(self) -> tuple[int, State, datetime | None, FailedEvent | None, str | None]:
        return (self.position, self.state, self.last_event_at, self.failure, self.reason)

    def take(self, other: Target) -> None:
        """Adopt ``other``'s progress (a plan's outcome once it is saved)."""
        self.position, self.state, self.last_event_at, self.failure, self.reason = other.progress()
        self.troubles, self.paused_until = other.troubles, other.paused_until


async def load_checkpoints(store: DocumentStore, ids: Iterable[str]) -> dict[str, CheckpointRecord]:
    wanted = list(ids)
    if not wanted:
        return {}
    documents = await store.find_by_ids(CHECKPOINTS, wanted)
    return {str(doc["_id"]): parse_checkpoint(doc) for doc in documents}


async def load_checkpoint(store: DocumentStore, checkpoint_id: str) -> CheckpointRecord | None:
    document = await store.find_one(CHECKPOINTS, {"_id": checkpoint_id})
    return parse_checkpoint(document) if document is not None else None


def checkpoint_op(target: Target, now: datetime, reason: str | None = None) -> UpdateOne:
    """Overwrite the version's document with the target's progress (upsert)."""
    error: object = (
        target.failure.model_dump(mode="json")
        if target.failure is not None
        else reason or target.reason
    )
    return UpdateOne(
        {"_id": target.checkpoint_id},
        {
            "$set": {
                "projection": target.name,
                "version": target.version,
                "position": target.position,
                "state": target.state,
                "last_event_at": target.last_event_at,
                "updated_at": now,
                "error": error,
            }
        },
        upsert=True,
    )


async def save_checkpoints(
    store: DocumentStore, targets: Sequence[Target], now: datetime, reason: str | None = None
) -> None:
    if targets:
        await store.bulk_write(CHECKPOINTS, [checkpoint_op(t, now, reason) for t in targets])
