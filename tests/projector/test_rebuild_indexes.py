"""A rebuild creates the new version's secondary indexes once it has loaded the log, before it
switches to it; unique indexes (constraints) are there from the start."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from motor.motor_asyncio import AsyncIOMotorClient

from projector.catalog import subscription_event_types
from projector.projections import OrderViews, all_projections
from projector.rebuild import RebuildOptions, rebuild_projection
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import REGISTRY, collection_name
from shared.ports.document_store import DocumentStore, IndexSpec, UpdateOne, WriteOp, WriteResult
from tests.conftest import unique
from tests.fakes.document_store import DelegatingDocumentStore
from tests.projector.support import FAST, Order, append_orders, random_day

ORDERS = 30
NEW_VERSION = collection_name("order_views", 2)
OPTIONS = RebuildOptions(runner=FAST, retire_grace_s=0.1, switch_wait_s=1.0, show_progress=False)


@pytest.fixture
def eventstore_uri(fresh_eventstore_uri: str) -> str:
    """Rebuilds read the log from zero: give each test a log of its own."""
    return fresh_eventstore_uri


class Recording(DelegatingDocumentStore):
    """Notes, in order, each index creation on the new version (with the number of documents
    it held then) and the switch to it."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.steps: list[tuple[Any, ...]] = []

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexSpec]) -> None:
        if collection == NEW_VERSION and indexes:
            held = len(await self.inner.find(collection, {}))
            self.steps.append(("indexes", tuple(index.name for index in indexes), held))
        await super().ensure_indexes(collection, indexes)

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if collection == REGISTRY and any(_switches(op) for op in ops):
            self.steps.append(("switch",))
        return await super().bulk_write(collection, ops)


def _switches(op: WriteOp) -> bool:
    if not isinstance(op, UpdateOne) or not isinstance(op.update, dict):
        return False
    fields = op.update.get("$set", {})
    return bool(fields.get("active_version") == 2)


class OrderViewsWithUniqueKey(OrderViews):
    indexes: ClassVar[tuple[IndexSpec, ...]] = (  # type: ignore[assignment]
        *OrderViews.indexes,
        IndexSpec(keys=(("order_id", 1),), unique=True, name="order_id_unique"),
    )


async def rebuild_of_orders(
    event_store: EsdbEventStore, document_store: DocumentStore, projection: OrderViews
) -> Recording:
    """``ORDERS`` paid orders in the log, then a rebuild of ``projection`` to version 2 through
    a store that records its index creations and its switch."""
    customer = unique("customer")
    await append_orders(event_store, [Order(customer, "paid") for _ in range(ORDERS)], random_day())
    store = Recording(document_store)
    outcome = await rebuild_projection(
        event_store,
        store,
        build_order_event_registry(),
        projection,
        event_types=subscription_event_types(all_projections()),
        options=OPTIONS,
        stop=asyncio.Event(),
    )
    assert outcome.switched and outcome.version == 2
    return store


async def index_names(mongo_uri: str, database: str) -> set[str]:
    client: Any = AsyncIOMotorClient(mongo_uri)
    try:
        information = await client[database][NEW_VERSION].index_information()
    finally:
        client.close()
    return set(information)


async def test_secondary_indexes_are_created_after_the_load_and_before_the_switch(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    store = await rebuild_of_orders(event_store, document_store, OrderViews())

    secondary = tuple(index.name for index in OrderViews.indexes)
    # Created once, over every document of the log, and before the switch
    assert store.steps == [("indexes", secondary, ORDERS), ("switch",)]
    assert set(secondary) <= await index_names(mongo_uri, mongo_database_name)


async def test_unique_indexes_are_there_before_the_first_document(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    store = await rebuild_of_orders(event_store, document_store, OrderViewsWithUniqueKey())

    secondary = tuple(index.name for index in OrderViews.indexes)
    assert store.steps == [
        ("indexes", ("order_id_unique",), 0),
        ("indexes", secondary, ORDERS),
        ("switch",),
    ]
    names = await index_names(mongo_uri, mongo_database_name)
    assert {"order_id_unique", *secondary} <= names
