"""The projections applied to embedded-mongo (or MONGO_URI) the way the runner applies a batch
(the dispatcher reads, folds and writes through the adapter): the documents a history implies,
and re-delivered events changing nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.projection import EventEnvelope
from projector.projections import all_projections
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import CHECKPOINTS, collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore, UpdateOne, WriteOp, WriteResult
from tests.fakes.document_store import DelegatingDocumentStore
from tests.projections.history import recorded
from tests.projections.scenario import (
    Scenario,
    expected_customer_summaries,
    expected_daily_sales,
    expected_order_views,
    scenario,
)

EXPECTED: dict[str, Callable[[Scenario], list[dict[str, Any]]]] = {
    "order_views": expected_order_views,
    "customer_summaries": expected_customer_summaries,
    "daily_sales": expected_daily_sales,
}


async def project(store: DocumentStore, envelopes: list[EventEnvelope]) -> None:
    """What the runner does for one batch, with every target's checkpoint at 0 (as if each
    batch were re-delivered after a crash that lost the checkpoints)."""
    targets = [Target(projection, 1) for projection in all_projections()]
    for target in targets:
        await store.ensure_indexes(target.collection, target.projection.indexes)
    dispatcher = Dispatcher(store, build_order_event_registry(), utc_now)
    plans = await dispatcher.apply(Batch([recorded(e) for e in envelopes]), targets, {})
    assert all(plan.outcome.failure is None and plan.trouble is None for plan in plans)


async def read_models(store: DocumentStore) -> dict[str, list[dict[str, Any]]]:
    return {
        name: await store.find(collection_name(name, 1), {}, sort=[("_id", 1)]) for name in EXPECTED
    }


def expected(s: Scenario) -> dict[str, list[dict[str, Any]]]:
    return {name: build(s) for name, build in EXPECTED.items()}


async def test_a_history_builds_the_expected_documents(store: DocumentStore) -> None:
    s = scenario()
    await project(store, s.history.envelopes)
    assert await read_models(store) == expected(s)


async def test_the_whole_history_delivered_again_changes_nothing(store: DocumentStore) -> None:
    s = scenario()
    await project(store, s.history.envelopes)
    await project(store, s.history.envelopes)
    assert await read_models(store) == expected(s)


@pytest.mark.parametrize(
    "batches",
    [
        # (start, end) slices applied in turn: each restart re-delivers events since the
        # last checkpoint, some of them already written before the "crash".
        [(0, 9), (4, 16), (12, 25)],
        [(0, 1), (0, 13), (13, 14), (11, 25), (24, 25)],
    ],
    ids=["three-restarts", "tiny-batches"],
)
async def test_redelivery_after_crashes_changes_nothing(
    store: DocumentStore, batches: list[tuple[int, int]]
) -> None:
    s = scenario()
    envelopes = s.history.envelopes
    assert batches[-1][1] == len(envelopes)
    for start, end in batches:
        await project(store, envelopes[start:end])
    assert await read_models(store) == expected(s)


class RacingStore(DelegatingDocumentStore):
    """Runs ``meanwhile`` once, just before the first write to a read model: the documents the
    dispatcher read have moved by the time its compare-and-set writes arrive."""

    def __init__(self, inner: DocumentStore, meanwhile: Callable[[], Awaitable[None]]) -> None:
        super().__init__(inner)
        self._meanwhile: Callable[[], Awaitable[None]] | None = meanwhile
        self.lost = 0  # operations that matched nothing: the race happened

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if self._meanwhile is not None and collection != CHECKPOINTS:
            meanwhile, self._meanwhile = self._meanwhile, None
            await meanwhile()
        result = await self.inner.bulk_write(collection, ops)
        self.lost += len(ops) - result.changed
        return result


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_a_late_write_of_a_dead_projector_is_folded_in_not_lost(
    store: DocumentStore, name: str
) -> None:
    """The projector is killed during a catch-up; MongoDB finishes its bulk write after the
    restarted projector read the same documents. The restarted projector's compare-and-set
    loses: it must read those documents again and fold the rest of its batch into them, not
    count the batch as done (which left them behind the log for good)."""
    s = scenario()
    envelopes = s.history.envelopes
    await project(store, envelopes[:5])  # orders a and b exist; c, d and e do not yet

    async def dead_predecessor_write() -> None:
        await project(store, envelopes[5:15])

    targets = [
        Target(projection, 1, position=envelopes[4].position) for projection in all_projections()
    ]
    racing = RacingStore(store, dead_predecessor_write)
    dispatcher = Dispatcher(racing, build_order_event_registry(), utc_now)  # type: ignore[arg-type]
    plans = await dispatcher.apply(Batch([recorded(e) for e in envelopes[5:]]), targets, {})

    assert all(plan.outcome.position == envelopes[-1].position for plan in plans)
    assert all(plan.trouble is None and plan.outcome.failure is None for plan in plans)
    assert await read_models(store) == expected(s)


async def test_a_document_changed_since_it_was_read_is_not_overwritten(
    store: DocumentStore,
) -> None:
    """Writes compare-and-set on the ``_position`` read: stale state never wins, whether the
    document existed when read or not."""
    s = scenario()
    envelopes = s.history.envelopes
    await project(store, envelopes[:5])  # orders a and b exist; c, d and e do not yet
    targets = [Target(projection, 1) for projection in all_projections()]
    views = collection_name("order_views", 1)
    meanwhile = {"_position": 10**12, "status": "written meanwhile"}

    async def written_meanwhile() -> None:
        for order in (s.a, s.e):
            await store.bulk_write(
                views,
                [UpdateOne({"_id": str(order)}, {"$set": meanwhile}, upsert=True)],
            )

    racing = RacingStore(store, written_meanwhile)
    dispatcher = Dispatcher(racing, build_order_event_registry(), utc_now)  # type: ignore[arg-type]
    await dispatcher.apply(Batch([recorded(e) for e in envelopes[5:]]), targets, {})

    documents = {d["_id"]: d for d in await store.find(views, {})}
    for order in (s.a, s.e):
        assert {k: documents[str(order)][k] for k in meanwhile} == meanwhile
    assert documents[str(s.b)] == next(
        view for view in expected_order_views(s) if view["_id"] == str(s.b)
    )
