"""The write side over each event store: the in-memory fake and the esdbclient adapter (over
embedded-eventstore, or a real EventStoreDB when EVENTSTORE_URI is set) must behave alike."""

from __future__ import annotations

import asyncio
import json
import uuid
from uuid import UUID

import pytest

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.contract.order_events import order_stream
from shared.contract.versioned_events import EventMetadata
from shared.ports.event_store import NO_STREAM, EventStore, NewEvent
from tests.fakes.event_store import InMemoryEventStore
from tests.write_side.support import ADDRESS, Handle, handler_over
from write_side.commands import (
    AddItem,
    CreateOrder,
    NewItem,
    PlaceOrder,
    order_id_for_idempotency_key,
)
from write_side.errors import VersionMismatch
from write_side.handlers import CommandResult
from write_side.repository import OrderRepository

CONCURRENCY = 20


def create(order_id: UUID, key: str | None = None) -> CreateOrder:
    return CreateOrder(
        order_id=order_id,
        customer_id="customer-1",
        currency="EUR",
        shipping_address=ADDRESS,
        items=[NewItem(sku="A", quantity=1, unit_price=250)],
        idempotency_key=key,
        correlation_id="corr",
    )


def add(order_id: UUID, quantity: int = 1, **extra: object) -> AddItem:
    return AddItem.model_validate(
        {"order_id": order_id, "sku": "A", "quantity": quantity, "unit_price": 250, **extra}
    )


class OrderRepositoryContract:
    @pytest.fixture
    def handle(self, store: EventStore) -> Handle:
        # The production retry budget: it must let CONCURRENCY writers on one order through.
        return handler_over(store)

    async def test_results_match_the_stored_stream(self, store: EventStore, handle: Handle) -> None:
        order_id = uuid.uuid4()
        created = await handle(create(order_id))
        placed = await handle(PlaceOrder(order_id=order_id))
        events = await store.read_stream(order_stream(order_id))
        assert [e.revision for e in events] == [0, 1, 2]
        assert (created.version, created.position) == (1, events[1].position)
        assert (placed.version, placed.position) == (2, events[2].position)
        for event in events:
            metadata = EventMetadata.from_json(event.metadata)
            assert metadata.correlation_id in {"corr", str(metadata.command_id)}
            assert metadata.command_id is not None and metadata.occurred_at is not None

    async def test_concurrent_adds_all_succeed_and_sum(
        self, store: EventStore, handle: Handle
    ) -> None:
        order_id = uuid.uuid4()
        await handle(create(order_id))
        results = await asyncio.gather(*(handle(add(order_id, 2)) for _ in range(CONCURRENCY)))
        assert sorted(r.version for r in results) == list(range(2, 2 + CONCURRENCY))
        loaded = await OrderRepository(store).load(order_id)
        assert loaded.state is not None
        line = loaded.state.line("A")
        assert line is not None and line.quantity == 1 + 2 * CONCURRENCY

    async def test_one_expected_version_lets_exactly_one_through(
        self, store: EventStore, handle: Handle
    ) -> None:
        order_id = uuid.uuid4()
        await handle(create(order_id))
        outcomes = await asyncio.gather(
            *(handle(add(order_id, expected_version=1)) for _ in range(CONCURRENCY)),
            return_exceptions=True,
        )
        assert sum(isinstance(o, CommandResult) for o in outcomes) == 1
        assert sum(isinstance(o, VersionMismatch) for o in outcomes) == CONCURRENCY - 1
        assert len(await store.read_stream(order_stream(order_id))) == 3

    async def test_concurrent_repeats_of_a_keyed_request_append_once(
        self, store: EventStore, handle: Handle
    ) -> None:
        key = f"key-{uuid.uuid4()}"
        order_id = order_id_for_idempotency_key(key)
        creates = await asyncio.gather(*(handle(create(order_id, key)) for _ in range(10)))
        adds = await asyncio.gather(
            *(handle(add(order_id, 3, idempotency_key="add-1")) for _ in range(10))
        )
        assert len(set(creates)) == 1 and len(set(adds)) == 1
        again = await handle(add(order_id, 3, idempotency_key="add-1"))
        assert again == adds[0]
        events = await store.read_stream(order_stream(order_id))
        assert [e.type for e in events] == ["OrderCreated", "ItemAdded", "ItemAdded"]
        assert creates[0].version == 1 and adds[0].version == 2

    async def test_a_stored_v1_order_loads_as_v2(self, store: EventStore) -> None:
        order_id = uuid.uuid4()
        payload = {
            "order_id": str(order_id),
            "customer_id": "customer-1",
            "currency": "EUR",
            "shipping_address": "1 Main St, 12345 Springfield, US",
        }
        raw = NewEvent(
            uuid.uuid4(),
            "OrderCreated",
            json.dumps(payload).encode(),
            EventMetadata(schema_version=1).to_json(),
        )
        await store.append(order_stream(order_id), NO_STREAM, [raw])
        loaded = await OrderRepository(store).load(order_id)
        assert loaded.state is not None
        assert loaded.state.shipping_address.city == "Springfield"
        assert loaded.state.shipping_address.postal_code == "12345"


class TestOverInMemoryEventStore(OrderRepositoryContract):
    @pytest.fixture
    def store(self) -> EventStore:
        return InMemoryEventStore()


class TestOverEsdbEventStore(OrderRepositoryContract):
    @pytest.fixture
    def store(self, esdb_event_store: EsdbEventStore) -> EventStore:
        return esdb_event_store
