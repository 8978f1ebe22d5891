"""Operator actions on failed projections: park the failing event, list what was parked.

Parking moves the event a projection version failed on into ``dead_letters`` (with its data,
the error and where it sat in the log) and moves that version's checkpoint just past it, so the
projection resumes with the next event. It is always explicit: the projector never skips an
event on its own. A parked event is skipped by every version of that projection (a rebuild
tries it again and skips it only if it still fails), so rebuilds stay consistent with it.

These are plain functions over the ports so the HTTP admin API can call them too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from projector.checkpoint_store import load_checkpoints, save_parked
from projector.lifecycle import Actor, Trigger, transition
from projector.version_registry import read_entry
from shared.contract.read_models import DEAD_LETTERS, FailedEvent, collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore, UpdateOne
from shared.ports.event_store import EventStoreReader, StreamNotFound


class NothingToPark(Exception):
    """No version of the projection is failed."""


class DeadLetter(BaseModel):
    """An event an operator took out of a projection's way."""

    model_config = ConfigDict(frozen=True)

    projection: str
    version: int = Field(description="The version that failed on it when it was parked")
    event_id: UUID
    stream: str
    revision: int
    position: int
    event_type: str
    error: str
    failed_at: datetime
    parked_at: datetime
    data: str | None = Field(description="The event's JSON as stored, if it could be read")
    metadata: str | None = None


def dead_letter_id(projection: str, event_id: UUID) -> str:
    return f"{projection}:{event_id}"


async def parked_event_ids(store: DocumentStore, projection: str) -> frozenset[UUID]:
    documents = await store.find(DEAD_LETTERS, {"projection": projection})
    return frozenset(UUID(str(doc["event_id"])) for doc in documents)


async def _stored_event(
    events: EventStoreReader, failure: FailedEvent
) -> tuple[str | None, str | None]:
    try:
        recorded = await events.read_stream(failure.stream)
    except StreamNotFound:
        return None, None
    for event in recorded:
        if event.event_id == failure.event_id:
            return (
                event.data.decode("utf-8", "replace"),
                event.metadata.decode("utf-8", "replace"),
            )
    return None, None


async def park_failed_event(
    store: DocumentStore, events: EventStoreReader, projection: str
) -> list[DeadLetter]:
    """Park the event each failed version of ``projection`` (active, or being rebuilt) stopped
    on and let that version resume after it. Raises NothingToPark when none is failed."""
    entry = await read_entry(store, projection)
    versions = [entry.active_version]
    if entry.rebuilding_version is not None:
        versions.append(entry.rebuilding_version)
    ids = [collection_name(projection, v) for v in versions]
    records = await load_checkpoints(store, ids)
    parked: list[DeadLetter] = []
    for version, checkpoint_id in zip(versions, ids, strict=True):
        record = records.get(checkpoint_id)
        if record is None or record.failure is None:
            continue
        failure = record.failure
        data, metadata = await _stored_event(events, failure)
        letter = DeadLetter(
            projection=projection,
            version=version,
            data=data,
            metadata=metadata,
            parked_at=utc_now(),
            event_id=failure.event_id,
            stream=failure.stream,
            revision=failure.revision,
            position=failure.position,
            event_type=failure.event_type,
            error=failure.error,
            failed_at=failure.failed_at,
        )
        document = letter.model_dump(mode="json") | {
            "failed_at": letter.failed_at,
            "parked_at": letter.parked_at,
        }
        await store.bulk_write(
            DEAD_LETTERS,
            [
                UpdateOne(
                    {"_id": dead_letter_id(projection, failure.event_id)},
                    {"$setOnInsert": document},
                    upsert=True,
                )
            ],
        )
        resumed = replace(
            record,
            position=failure.position,
            standing=transition(record.standing, Trigger.PARKED, Actor.OPERATOR),
            updated_at=letter.parked_at,
        )
        await save_parked(store, record, resumed)
        parked.append(letter)
    if not parked:
        raise NothingToPark(f"projection {projection!r} has no failed version")
    return parked


async def list_dead_letters(
    store: DocumentStore, projection: str | None = None
) -> Sequence[DeadLetter]:
    """Parked events, oldest first (of one projection when given)."""
    query = {"projection": projection} if projection else {}
    documents = await store.find(DEAD_LETTERS, query, sort=[("parked_at", 1)])
    return [DeadLetter.model_validate(doc) for doc in documents]


async def dead_letter_counts(store: DocumentStore, limit: int) -> Counter[str]:
    """How many events are parked per projection, over at most ``limit`` dead letters (a
    bounded read for metrics; the counts are a lower bound beyond it)."""
    documents = await store.find(DEAD_LETTERS, {}, limit=limit)
    return Counter(str(document.get("projection")) for document in documents)
