"""The projections' operations applied to embedded-mongo (or MONGO_URI) through the adapter:
the documents a history implies, and re-delivered events changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from projector.projection import EventEnvelope
from projector.projections import all_projections
from shared.document_store import DocumentStore
from shared.read_models import collection_name
from tests.projections.history import ops_for
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
    """What the runner does for one batch: each projection's ops, in order, in one call."""
    for projection in all_projections():
        collection = collection_name(projection.name, 1)
        await store.ensure_indexes(collection, projection.indexes)
        await store.bulk_write(collection, ops_for(projection, envelopes))


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
