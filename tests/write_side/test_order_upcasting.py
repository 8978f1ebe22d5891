"""OrderCreated v1 stored the address as one string; the write side reads it as v2."""

from __future__ import annotations

import json
import uuid

from shared.contract.order_events import (
    Address,
    OrderCreated,
    build_order_event_registry,
    order_stream,
)
from shared.contract.versioned_events import EventMetadata
from shared.ports.event_store import NO_STREAM, NewEvent
from tests.fakes.event_store import InMemoryEventStore
from tests.write_side.support import handler_over
from write_side.commands import AddItem
from write_side.domain.order import fold
from write_side.repository import OrderRepository

V1_ADDRESS = "1 Main St, Flat 2, 12345 Springfield, us"
V2_ADDRESS = Address(
    line1="1 Main St", line2="Flat 2", city="Springfield", postal_code="12345", country="US"
)


def v1_created(order_id: uuid.UUID) -> NewEvent:
    payload = {
        "order_id": str(order_id),
        "customer_id": "customer-1",
        "currency": "EUR",
        "shipping_address": V1_ADDRESS,
    }
    return NewEvent(
        event_id=uuid.uuid4(),
        type="OrderCreated",
        data=json.dumps(payload).encode(),
        metadata=EventMetadata(schema_version=1).to_json(),
    )


def test_registry_reads_a_v1_payload_as_v2() -> None:
    order_id = uuid.uuid4()
    raw = v1_created(order_id)
    event = build_order_event_registry().deserialize(
        raw.type, raw.data, EventMetadata.from_json(raw.metadata)
    )
    assert isinstance(event, OrderCreated)
    state = fold([event])
    assert state is not None
    assert state.shipping_address == V2_ADDRESS


async def test_repository_loads_a_stored_v1_order_as_v2() -> None:
    store = InMemoryEventStore()
    order_id = uuid.uuid4()
    await store.append(order_stream(order_id), NO_STREAM, [v1_created(order_id)])
    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None
    assert loaded.state.shipping_address == V2_ADDRESS
    assert loaded.version == 0


async def test_commands_work_on_an_order_created_in_v1() -> None:
    store = InMemoryEventStore()
    order_id = uuid.uuid4()
    await store.append(order_stream(order_id), NO_STREAM, [v1_created(order_id)])
    handle = handler_over(store)
    result = await handle(AddItem(order_id=order_id, sku="A", quantity=1, unit_price=1))
    assert result.version == 1
    stored = await store.read_stream(order_stream(order_id))
    # The old event stays as it was stored: upcasting happens on read only.
    assert json.loads(stored[0].data)["shipping_address"] == V1_ADDRESS
