"""Write one batch to a set of projection versions: read, fold, write with compare-and-set.

For each version, the documents the batch affects are taken from the ones this process wrote
last (``projector.document_cache``) or else read with one query per collection (in chunks), the
batch is folded into them (``projector.fold``, pure) and each changed document is written once,
compare-and-set on the ``_position`` it was folded from (``compare_and_set``): a document that
changed since it was read or written is never overwritten with stale state. A document that was
read (or kept) is written as what changed since (``projector.document_diff``), a new one whole.

MongoDB round trips per batch: one bulk write per version whose documents change, a read per
version only for documents not kept from an earlier batch, and one bulk write of the
checkpoints (``save_progress``); the versions are written in parallel.

Under a lease (several projector instances, see ``projector.leases``), nothing is written once
the target's lease is no longer held: ``LeaseLost`` ends the session instead.

Exactly once: a write that loses its compare-and-set is not done. When one matched nothing, the
documents are read again from MongoDB (never from the kept copies) and the batch folded into
them again (another writer, e.g. a killed predecessor's bulk write that the server finished
late, moved them; its events are skipped by position), for up to ``WRITE_ROUNDS`` rounds.
Only a plan whose every write took effect carries progress (``Plan.outcome`` past the target);
the runner saves checkpoints through ``save_progress`` once the documents are written, so a
crash in between re-delivers events that each document then skips.

Errors that are neither outages nor an event's fault (MongoDB refusing a read, documents that
keep moving) do not stop the other versions: the version's plan carries the ``trouble`` and the
runner pauses it and retries it later. MongoDB refusing the documents of one event (see
``projector.failures``) stops the version before that event, as a failing handler does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from uuid import UUID

from projector.batching import Batch
from projector.checkpoint_store import Target, save_checkpoints
from projector.document_cache import DocumentCache
from projector.document_diff import update_between
from projector.failures import write_or_find_culprit
from projector.fold import Applied, Change, Decoder, Fold, document_ids, failed_event, fold
from projector.leases import LeaseLost
from projector.lifecycle import Trigger
from shared.contract.read_models import POSITION_FIELD
from shared.contract.versioned_events import EventRegistry
from shared.ports.document_store import (
    Document,
    DocumentStore,
    ReplaceOne,
    UpdateOne,
    WriteOp,
)
from shared.ports.errors import StoreUnavailable

# Rounds of read, fold and write for one batch while documents keep moving under it; more means
# something else keeps writing this version, and the target is paused as failing.
WRITE_ROUNDS = 5
log = logging.getLogger(__name__)


def compare_and_set(document_id: str, document: Document, base: Document | None) -> WriteOp:
    """Write ``document`` only while the stored one is still ``base``, the one it was folded
    from (None: there was none), as its ``_position`` says.

    Without a base (or one without a ``_position``): insert it unless one appeared since (an
    upsert whose filter matches no document that has a ``_position``: one that appeared
    meanwhile makes the insert fail on its ``_id``, which the document store counts as no
    change; the embedded MongoDB server does this a quarter faster than a ``$setOnInsert``
    upsert). Otherwise change it only if its ``_position`` is unchanged: a document written
    since it was read matches nothing and is left as it is. When the write matches, the stored
    document is ``base``, so only what differs from it is written (``document_diff``), or the
    whole document where that would name too many fields.
    """
    if base is None or (position := base.get(POSITION_FIELD)) is None:
        absent = {"_id": document_id, POSITION_FIELD: {"$exists": False}}
        return ReplaceOne(absent, document, upsert=True)
    condition = {"_id": document_id, POSITION_FIELD: position}
    update = update_between(base, document)
    if update is not None:
        return UpdateOne(condition, update)
    return ReplaceOne(condition, document)


def _op(change: Change) -> WriteOp:
    return compare_and_set(change.document_id, change.document, change.base)


def _ops_by_event(folded: Fold) -> list[list[WriteOp]]:
    """Per applied event, the write of the state it left (to find the event whose document
    MongoDB refuses)."""
    return [[] if change is None else [_op(change)] for change in folded.event_changes()]


@dataclass(frozen=True, slots=True)
class Plan:
    """What one batch did to one target: the events applied and the target's progress now that
    their documents are written (``outcome``), or why nothing was done (``trouble``; then the
    outcome is the target itself)."""

    target: Target
    outcome: Target
    applied: tuple[Applied, ...] = ()
    trouble: str | None = None

    @classmethod
    def written(cls, target: Target, folded: Fold) -> Plan:
        """The plan of a fold whose every write took effect: only then may it move on."""
        outcome = replace(target, position=folded.position, last_event_at=folded.last_event_at)
        if folded.failure is not None:
            outcome = outcome.moved(Trigger.EVENT_FAILED, failure=folded.failure)
        return cls(target, outcome, folded.applied)

    @classmethod
    def not_done(cls, target: Target, trouble: str) -> Plan:
        return cls(target, target, trouble=trouble)

    @property
    def changed_documents(self) -> bool:
        """Whether the batch changed any of the target's documents."""
        return any(item.change is not None for item in self.applied)


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
        self._kept = DocumentCache()

    def forget_documents(self) -> None:
        """Read every document from MongoDB next time (a new session: whatever happened to
        the read models meanwhile, e.g. an operator's or another process's writes)."""
        self._kept.clear()

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

    async def save_progress(self, settled: Sequence[tuple[Target, Target]], now: datetime) -> None:
        """Save the checkpoint of each (target, outcome) whose progress changed, in one bulk
        write, in the order given."""
        changed = [outcome for target, outcome in settled if outcome.progress != target.progress]
        await save_checkpoints(self._store, changed, now)

    async def _apply_one(
        self, batch: Batch, target: Target, decoder: Decoder, parked: frozenset[UUID]
    ) -> Plan:
        ids = document_ids(batch, target, decoder)
        for _ in range(WRITE_ROUNDS):
            # Any error but an outage is this target's alone (whatever MongoDB or a fake may
            # raise): the others carry on, and this one is retried later.
            try:
                documents = await self._load(target, ids)
                folded = fold(
                    batch, target, documents, decoder=decoder, parked=parked, now=self._clock()
                )
                self._log_skipped(target, folded)
                changes = folded.final_changes()
                # Whether this write takes effect, fails or loses its compare-and-set, the kept
                # copies are not known to be current until it is done: a next round reads
                # them all from MongoDB, and they are kept again once the write took effect.
                self._kept.drop(target.collection, ids)
                if not target.writable:
                    raise LeaseLost(f"projection {target.name}: lease no longer held; not written")
                written = await write_or_find_culprit(
                    self._store,
                    target.collection,
                    [_op(change) for change in changes],
                    partial(_ops_by_event, folded),
                )
            except (StoreUnavailable, LeaseLost):
                raise
            except Exception as error:
                return Plan.not_done(target, f"{type(error).__name__}: {error}")
            if not written.complete:
                log.info(
                    "projection %s v%d: documents moved since they were read; reading them again",
                    target.name,
                    target.version,
                )
                continue
            if written.culprit is not None:
                index, error_text = written.culprit
                failure = failed_event(folded.applied[index].event, error_text, 1, self._clock())
                folded = folded.stopped_at(index, failure, target)
            else:
                now_stored = {**documents, **{c.document_id: c.document for c in changes}}
                self._kept.keep(target.collection, now_stored)
            return Plan.written(target, folded)
        return Plan.not_done(
            target,
            f"documents kept changing while this batch was written ({WRITE_ROUNDS} rounds): "
            "is another process writing this projection version?",
        )

    async def _load(self, target: Target, ids: Sequence[str]) -> dict[str, Document]:
        """The documents among ``ids`` that exist, by ``_id``: the kept copies, and one query
        (in chunks) for the rest."""
        documents, missing = self._kept.take(target.collection, ids)
        if missing:
            found = await self._store.find_by_ids(target.collection, missing)
            documents.update((document["_id"], document) for document in found)
        return documents

    @staticmethod
    def _log_skipped(target: Target, folded: Fold) -> None:
        for event, error in folded.skipped:
            log.warning(
                "projection %s v%d: skipping parked event %s at %d (%s)",
                target.name,
                target.version,
                event.event_id,
                event.position,
                error,
            )
