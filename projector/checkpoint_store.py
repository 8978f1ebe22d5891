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
from datetime import datetime

from projector.leases import Lease, LeaseLost
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
from shared.contract.read_models import (
    CHECKPOINTS,
    FENCE_FIELD,
    FENCED_AT_FIELD,
    CheckpointDocument,
    FailedEvent,
    collection_name,
    failed_on,
    fence_at_most,
    fenced_by,
    in_projection,
    read_checkpoints,
    unfenced,
)
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DeleteOne, DocumentStore, UpdateOne


class _Standing:
    """How a checkpoint record or a target stands, read through to its ``standing``."""

    __slots__ = ()
    standing: Standing

    @property
    def state(self) -> State:
        return self.standing.state

    @property
    def failure(self) -> FailedEvent | None:
        return self.standing.failure

    @property
    def reason(self) -> str | None:
        return self.standing.reason


@dataclass(frozen=True, slots=True)
class CheckpointRecord(_Standing):
    """A checkpoint as read back: its progress, and how the version stands."""

    projection: str
    version: int
    position: int
    standing: Standing
    last_event_at: datetime | None
    updated_at: datetime | None

    @property
    def id(self) -> str:
        return collection_name(self.projection, self.version)

    @classmethod
    def of(cls, document: CheckpointDocument) -> CheckpointRecord:
        return cls(
            projection=document.projection,
            version=document.version,
            position=document.position,
            standing=stored_standing(document.state, document.failure, document.reason),
            last_event_at=document.last_event_at,
            updated_at=document.updated_at,
        )

    def document(self) -> CheckpointDocument:
        return _document(
            self.projection,
            self.version,
            position=self.position,
            standing=self.standing,
            last_event_at=self.last_event_at,
            updated_at=self.updated_at,
        )


def _document(
    projection: str,
    version: int,
    *,
    position: int,
    standing: Standing,
    last_event_at: datetime | None,
    updated_at: datetime | None,
) -> CheckpointDocument:
    return CheckpointDocument(
        projection=projection,
        version=version,
        position=position,
        state=standing.state,
        last_event_at=last_event_at,
        updated_at=updated_at,
        failure=standing.failure,
        reason=standing.reason,
    )


@dataclass(frozen=True, slots=True)
class Target(_Standing):
    """One projection version a runner feeds (for ``fed_by``), with its progress as last saved.

    Immutable: progress and lifecycle moves make a new one (``dataclasses.replace``,
    ``restored``, ``moved``), which the runner keeps in place of the old one once its checkpoint
    is saved.
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
    # The lease it is fed under (a daemon's target; None for a rebuild's): its token fences
    # every checkpoint save, and no write is made once it is no longer held.
    lease: Lease | None = None

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

    @property
    def writable(self) -> bool:
        """False once the lease it is fed under is no longer held: nothing is written for it."""
        return self.lease is None or self.lease.held()

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
    """The checkpoints among ``ids`` that exist, by id."""
    documents = await read_checkpoints(store, list(ids))
    return {key: CheckpointRecord.of(document) for key, document in documents.items()}


async def load_checkpoint(store: DocumentStore, checkpoint_id: str) -> CheckpointRecord | None:
    return (await load_checkpoints(store, [checkpoint_id])).get(checkpoint_id)


def checkpoint_op(target: Target, now: datetime) -> UpdateOne:
    """Overwrite the version's document with the target's progress: under its lease, only while
    the document carries that lease's token; without one (a rebuild), upserting it while no
    daemon has stamped it."""
    document = _document(
        target.name,
        target.version,
        position=target.position,
        standing=target.standing,
        last_event_at=target.last_event_at,
        updated_at=now,
    )
    if target.lease is not None:
        return UpdateOne(fenced_by(document.id, target.lease.token), document.update())
    return UpdateOne(unfenced(document.id), document.update(), upsert=True)


async def save_checkpoints(store: DocumentStore, targets: Sequence[Target], now: datetime) -> None:
    """Save the targets' progress. Raises LeaseLost when a save under a lease matched nothing:
    a newer owner has stamped the document (nothing of this save was written)."""
    if not targets:
        return
    result = await store.bulk_write(CHECKPOINTS, [checkpoint_op(t, now) for t in targets])
    if result.changed < len(targets) and any(t.lease is not None for t in targets):
        raise LeaseLost(
            f"{len(targets) - result.changed} of the checkpoint saves of "
            f"{', '.join(t.checkpoint_id for t in targets)} refused: a lease was taken over"
        )


async def stamp_fence(
    store: DocumentStore, checkpoint_id: str, token: int, now: datetime | None = None
) -> bool:
    """Make ``token`` the only one whose saves the checkpoint ``checkpoint_id`` takes (creating
    the document when missing); stamping the same token again is allowed. False when a newer
    token has stamped it."""
    stamp = {FENCE_FIELD: token, FENCED_AT_FIELD: now or utc_now()}
    result = await store.bulk_write(
        CHECKPOINTS, [UpdateOne(fence_at_most(checkpoint_id, token), {"$set": stamp}, upsert=True)]
    )
    return result.changed == 1


async def save_parked(
    store: DocumentStore, failed: CheckpointRecord, resumed: CheckpointRecord
) -> None:
    """Replace the progress of a version that ``failed`` on an event with ``resumed`` (its
    progress once an operator parked that event), counting the event in ``parked_events``; only
    while the stored version still fails on that very event (no race with a daemon retry)."""
    if failed.failure is None:
        raise ValueError(f"checkpoint {failed.id!r}: nothing failed, nothing to park")
    condition = failed_on(failed.id, failed.failure.event_id)
    await store.bulk_write(
        CHECKPOINTS, [UpdateOne(condition, resumed.document().update(parked=True))]
    )


async def delete_checkpoint(store: DocumentStore, checkpoint_id: str) -> None:
    await store.bulk_write(CHECKPOINTS, [DeleteOne({"_id": checkpoint_id})])


async def checkpointed_versions(store: DocumentStore, projection: str) -> set[int]:
    """The versions of ``projection`` that have a checkpoint document."""
    documents = await store.find(CHECKPOINTS, in_projection(projection))
    versions = {CheckpointDocument.from_document(document).version for document in documents}
    return {version for version in versions if version > 0}  # 0: a stray, unnamed document
