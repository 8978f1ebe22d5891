"""The documents the projector keeps between batches (``projector.document_cache``): a batch on
documents it wrote reads none of them back, what it writes is what reading them back would have
written, and a kept document that another writer moved is read again, never overwritten. On
the embedded MongoDB (or MONGO_URI), through the adapter, with the real projections."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta, timezone
from typing import Any

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.document_cache import DocumentCache
from projector.projection import EventEnvelope
from projector.projections import all_projections
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import collection_name
from shared.contract.versioned_events import EventMetadata, utc_now
from shared.ports.document_store import Document, DocumentStore, WriteOp, WriteResult
from tests.fakes.document_store import DelegatingDocumentStore
from tests.projections.history import recorded
from tests.projections.scenario import scenario


class CountingStore(DelegatingDocumentStore):
    """Counts the reads of each collection; runs ``meanwhile`` once before the next write to a
    read model (another writer getting there first)."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.reads: Counter[str] = Counter()
        self.meanwhile: Callable[[], Awaitable[None]] | None = None

    def before_read(self, collection: str) -> None:
        self.reads[collection] += 1

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if self.meanwhile is not None and collection != "projection_checkpoints":
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await super().bulk_write(collection, ops)


def targets(version: int = 1) -> list[Target]:
    return [Target(projection, version) for projection in all_projections()]


def writer(store: DocumentStore) -> Dispatcher:
    return Dispatcher(store, build_order_event_registry(), utc_now)


async def feed(
    dispatcher: Dispatcher, envelopes: Sequence[EventEnvelope], at: list[Target]
) -> list[Target]:
    """One batch of ``envelopes`` for the targets ``at``; the targets after it."""
    plans = await dispatcher.apply(Batch([recorded(e) for e in envelopes]), at, {})
    assert all(plan.trouble is None and plan.outcome.failure is None for plan in plans)
    return [plan.outcome for plan in plans]


async def stored(store: DocumentStore, version: int = 1) -> dict[str, list[Document]]:
    return {
        projection.name: await store.find(
            collection_name(projection.name, version), {}, sort=[("_id", 1)]
        )
        for projection in all_projections()
    }


async def test_a_batch_on_documents_the_projector_wrote_reads_none_back(
    document_store: DocumentStore,
) -> None:
    s = scenario()
    envelopes = s.history.envelopes
    store = CountingStore(document_store)
    dispatcher = writer(store)
    # Orders a and b exist (their views, cust-1's summary) once the first batch is written.
    now = await feed(dispatcher, envelopes[:5], targets())
    store.reads.clear()
    # Items added to a and b: every document the batch changes was written by the first one.
    now = await feed(dispatcher, envelopes[5:7], now)
    assert store.reads == Counter()
    # Order a changes again, and a new customer's order comes: only the new documents (not
    # kept yet) are read.
    await feed(dispatcher, envelopes[7:11], now)
    assert set(store.reads) == {"order_views_v1", "customer_summaries_v1"}

    # What was written equals what reading every document back before each batch writes.
    await feed(writer(document_store), envelopes[:5], targets(2))
    await feed(writer(document_store), envelopes[5:7], targets(2))
    await feed(writer(document_store), envelopes[7:11], targets(2))
    assert await stored(document_store, 1) == await stored(document_store, 2)


def odd_times(envelopes: Sequence[EventEnvelope]) -> list[EventEnvelope]:
    """The same events, happening at microseconds past the minute, told in UTC+05:30 (MongoDB
    keeps milliseconds, and UTC)."""
    india = timezone(timedelta(hours=5, minutes=30))
    shifted = []
    for index, envelope in enumerate(envelopes):
        when = (envelope.occurred_at + timedelta(microseconds=123_457 * (index + 1))).astimezone(
            india
        )
        metadata = EventMetadata(occurred_at=when, command_id=envelope.metadata.command_id)
        shifted.append(dataclasses.replace(envelope, metadata=metadata, recorded_at=when))
    return shifted


async def test_one_event_per_batch_writes_what_reading_each_back_would(
    document_store: DocumentStore,
) -> None:
    envelopes = odd_times(scenario().history.envelopes)
    kept = writer(document_store)
    keeping, reading = targets(1), targets(2)
    for envelope in envelopes:
        keeping = await feed(kept, [envelope], keeping)
        reading = await feed(writer(document_store), [envelope], reading)
    assert await stored(document_store, 1) == await stored(document_store, 2)


async def test_a_kept_document_another_writer_moved_is_read_again_not_overwritten(
    document_store: DocumentStore,
) -> None:
    s = scenario()
    envelopes = s.history.envelopes
    store = CountingStore(document_store)
    dispatcher = writer(store)
    now = await feed(dispatcher, envelopes[:5], targets())

    async def a_late_write_of_another_projector() -> None:
        await feed(writer(document_store), envelopes[5:9], now)

    # The kept documents of orders a and b are stale by the time this batch is written.
    store.meanwhile = a_late_write_of_another_projector
    store.reads.clear()
    after = await feed(dispatcher, envelopes[5:12], now)
    assert store.reads["order_views_v1"] >= 1  # the lost compare-and-set sent it to MongoDB
    assert all(target.position == envelopes[11].position for target in after)
    await feed(dispatcher, envelopes[12:], after)

    # Every event applied exactly once: the same documents as one clean pass.
    await feed(writer(document_store), envelopes, targets(2))
    assert await stored(document_store, 1) == await stored(document_store, 2)


def test_the_cache_keeps_the_most_recently_used_documents_up_to_its_capacity() -> None:
    cache = DocumentCache(capacity=2)
    documents: dict[str, Any] = {key: {"_id": key} for key in "abc"}
    cache.keep("c1", {"a": documents["a"], "b": documents["b"]})
    found, missing = cache.take("c1", ["a", "z"])  # a is used: b is now the oldest
    assert (found, missing) == ({"a": documents["a"]}, ["z"])
    cache.keep("c1", {"c": documents["c"]})
    assert len(cache) == 2
    assert cache.take("c1", ["a", "b", "c"]) == (
        {"a": documents["a"], "c": documents["c"]},
        ["b"],
    )
    assert cache.take("c2", ["a"]) == ({}, ["a"])  # another collection, another document
    cache.drop("c1", ["a"])
    assert cache.take("c1", ["a"]) == ({}, ["a"])
    cache.clear()
    assert len(cache) == 0
