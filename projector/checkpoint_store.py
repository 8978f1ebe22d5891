"""Checkpoints: how far each projection version got, and how it stands; the projector's only
reader and writer of checkpoint documents.

One document per projection version in ``projection_checkpoints`` (``_id`` = the version's
collection name, see ``shared.contract.read_models``). ``position`` is the global position of
the last event applied or scanned; a failed version also records the event it failed on. Only
one process writes a given version's document at a time: the daemon for active versions, the
rebuilder for the version it is building, an operator command for a failed version (and that
one only on condition that the version still fails on the event the operator saw).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from projector.lifecycle import (
    FEEDING_FROM_SCRATCH,
    Actor,
    Standing,
    State,
    Trigger,
    stored_standing,
    transition,
)
from projector.projection import Projection
from shared.contract.read_models import CHECKPOINTS, collection_name
from shared.ports.document_store import DeleteOne, DocumentStore, UpdateOne


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
    standing: Standing
    last_event_at: datetime | None
    updated_at: datetime | None

    @property
    def state(self) -> State:
        return self.standing.state

    @property
    def failure(self) -> FailedEvent | None:
        return self.standing.failure

    @property
    def reason(self) -> str | None:
        return self.standing.reason


def as_utc(value: object) -> datetime | None:
    """BSON dates come back naive (UTC) unless the client is tz-aware; normalise both."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_checkpoint(document: dict[str, Any]) -> CheckpointRecord:
    error = document.get("error")
    failure = FailedEvent.model_validate(error) if isinstance(error, dict) else None
    reason = error if isinstance(error, str) else None
    return CheckpointRecord(
        position=int(document.get("position") or 0),
        standing=stored_standing(document.get("state"), failure, reason),
        last_event_at=as_utc(document.get("last_event_at")),
        updated_at=as_utc(document.get("updated_at")),
    )


@dataclass(frozen=True, slots=True)
class Target:
    """One projection version a runner feeds (for ``fed_by``), with its progress as last saved.

    Immutable: progress and lifecycle moves make a new one (``advanced``, ``moved``), which the
    runner keeps in place of the old one once its checkpoint is saved.
    """

    projection: Projection
    version: int
    position: int = 0
    standing: Standing = FEEDING_FROM_SCRATCH
    last_event_at: datetime | None = None
    fed_by: Actor = Actor.DAEMON
    # While failing (an error that is neither an outage nor an event's fault): how many times
    # in a row, and until when the version gets no events (then it is retried).
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
    def state(self) -> State:
        return self.standing.state

    @property
    def failure(self) -> FailedEvent | None:
        return self.standing.failure

    @property
    def reason(self) -> str | None:
        return self.standing.reason

    @property
    def accepting(self) -> bool:
        """False once failed (a failed version gets no events until an operator acts) and
        while paused after an error (until the runner retries it)."""
        return self.failure is None and self.paused_until is None

    @property
    def progress(self) -> tuple[int, Standing, datetime | None]:
        """What its checkpoint records: saved again only when this changed."""
        return (self.position, self.standing, self.last_event_at)

    def restored(self, record: CheckpointRecord | None) -> Target:
        """This version as its checkpoint ``record`` says it stands (unchanged without one)."""
        if record is None:
            return self
        return replace(
            self,
            position=record.position,
            standing=record.standing,
            last_event_at=record.last_event_at,
        )

    def moved(
        self, trigger: Trigger, *, reason: str | None = None, failure: FailedEvent | None = None
    ) -> Target:
        """This version after ``trigger``, moved by whoever feeds it (see ``lifecycle``)."""
        standing = transition(self.standing, trigger, self.fed_by, reason=reason, failure=failure)
        return replace(self, standing=standing)


async def load_checkpoints(store: DocumentStore, ids: Iterable[str]) -> dict[str, CheckpointRecord]:
    wanted = list(ids)
    if not wanted:
        return {}
    documents = await store.find_by_ids(CHECKPOINTS, wanted)
    return {str(doc["_id"]): parse_checkpoint(doc) for doc in documents}


async def load_checkpoint(store: DocumentStore, checkpoint_id: str) -> CheckpointRecord | None:
    document = await store.find_one(CHECKPOINTS, {"_id": checkpoint_id})
    return parse_checkpoint(document) if document is not None else None


def checkpoint_op(target: Target, now: datetime) -> UpdateOne:
    """Overwrite the version's document with the target's progress (upsert)."""
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
                "error": _error_field(target.standing),
            }
        },
        upsert=True,
    )


def _error_field(standing: Standing) -> object:
    """The failed event, or why the version is failing or waiting for a store, or None."""
    if standing.failure is not None:
        return standing.failure.model_dump(mode="json")
    return standing.reason


async def save_checkpoints(store: DocumentStore, targets: Sequence[Target], now: datetime) -> None:
    if targets:
        await store.bulk_write(CHECKPOINTS, [checkpoint_op(t, now) for t in targets])


async def save_parked(
    store: DocumentStore, checkpoint_id: str, failed: CheckpointRecord, resumed: CheckpointRecord
) -> None:
    """Replace the progress of a version that ``failed`` on an event with ``resumed`` (its
    progress once an operator parked that event), counting the event in ``parked_events``; only
    while the stored version still fails on that very event (no race with a daemon retry)."""
    if failed.failure is None:
        raise ValueError(f"checkpoint {checkpoint_id!r}: nothing failed, nothing to park")
    update = {
        "$set": {
            "position": resumed.position,
            "state": resumed.state,
            "error": _error_field(resumed.standing),
            "updated_at": resumed.updated_at,
        },
        "$inc": {"parked_events": 1},
    }
    condition = {"_id": checkpoint_id, "error.event_id": str(failed.failure.event_id)}
    await store.bulk_write(CHECKPOINTS, [UpdateOne(condition, update)])


async def delete_checkpoint(store: DocumentStore, checkpoint_id: str) -> None:
    await store.bulk_write(CHECKPOINTS, [DeleteOne({"_id": checkpoint_id})])


async def checkpointed_versions(store: DocumentStore, projection: str) -> set[int]:
    """The versions of ``projection`` that have a checkpoint document."""
    documents = await store.find(CHECKPOINTS, {"projection": projection})
    return {int(doc["version"]) for doc in documents if isinstance(doc.get("version"), int)}
