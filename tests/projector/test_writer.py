"""The writer (``projector.dispatch``): a write that loses its compare-and-set is never counted as
done. The store here is a fake that answers how many operations took effect; MongoDB's own
late-write race is in ``tests/projections/test_projections_on_mongo.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import WRITE_ROUNDS, Dispatcher
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import CHECKPOINTS
from shared.ports.document_store import Document, WriteOp, WriteResult
from tests.projector.test_fold import Units, added

NOW = datetime(2024, 5, 2, tzinfo=UTC)


class LosingStore:
    """Every document reads as absent; the first ``losses`` writes to a read model match
    nothing (another writer got there first), later ones take effect."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.reads = 0
        self.written: list[tuple[str, int]] = []  # (collection, operations that took effect)

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        self.reads += 1
        return []

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if collection != CHECKPOINTS and self.losses > 0:
            self.losses -= 1
            return WriteResult(changed=0)
        self.written.append((collection, len(ops)))
        return WriteResult(changed=len(ops))


def dispatcher(store: LosingStore) -> Dispatcher:
    return Dispatcher(store, build_order_event_registry(), lambda: NOW)  # type: ignore[arg-type]


async def test_a_write_that_keeps_losing_its_compare_and_set_is_never_done() -> None:
    # Given a store where every write of the batch's documents matches nothing
    store = LosingStore(losses=10**6)
    target = Target(Units(), 1, position=5)
    writer = dispatcher(store)
    # When the batch is written
    [plan] = await writer.apply(Batch([added(10, "A"), added(20, "B")]), [target], {})
    # Then it was read and folded again each round, and in the end not counted as done
    assert store.reads == WRITE_ROUNDS
    assert plan.trouble is not None and f"{WRITE_ROUNDS} rounds" in plan.trouble
    assert plan.outcome is target and plan.applied == ()
    # And so its checkpoint does not move
    await writer.save_progress([(target, plan.outcome)], NOW)
    assert store.written == []


async def test_a_lost_compare_and_set_is_read_again_before_the_batch_counts() -> None:
    store = LosingStore(losses=1)
    target = Target(Units(), 1, position=5)
    writer = dispatcher(store)
    [plan] = await writer.apply(Batch([added(10, "A"), added(20, "B")]), [target], {})
    assert store.reads == 2  # the lost round, then the one that took effect
    assert plan.trouble is None and plan.outcome.position == 20
    assert store.written == [("units_v1", 2)]
    await writer.save_progress([(target, plan.outcome)], NOW)
    assert store.written == [("units_v1", 2), (CHECKPOINTS, 1)]
