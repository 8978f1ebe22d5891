"""Idempotency keys: a repeated request (sequential, late, or concurrent) returns the first
result and appends nothing; a key reused for a different request is refused."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.write_side.support import (
    Handle,
    InterferingStore,
    add,
    create,
    new_order,
    stored,
)
from write_side.commands import (
    CancelOrder,
    CreateOrder,
    NewItem,
    order_id_for_idempotency_key,
)
from write_side.domain.rules import Rule
from write_side.errors import IdempotencyKeyReused
from write_side.handlers import CommandResult
from write_side.repository import event_ids

# --- idempotency ---


async def test_a_repeated_request_returns_the_original_result_and_appends_nothing(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    first = await handle(add(order_id, "A", 2, idempotency_key="k"))
    again = await handle(add(order_id, "A", 2, idempotency_key="k"))
    assert again == first
    # Much later, after other changes (and with a now-stale If-Match): still the first result.
    await handle(add(order_id, "B", 1))
    late = await handle(add(order_id, "A", 2, idempotency_key="k", expected_version=0))
    assert late == first
    events = await stored(store, order_id)
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded", "ItemAdded"]


async def test_concurrent_repeats_append_exactly_once(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    results = await asyncio.gather(
        *(handle(add(order_id, "A", 2, idempotency_key="k")) for _ in range(10))
    )
    assert len(set(results)) == 1
    events = await stored(store, order_id)
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded"]
    assert results[0].version == 1 and results[0].position == events[-1].position


async def test_identical_appends_are_absorbed_by_the_store(
    store: InterferingStore, handle: Handle
) -> None:
    """Both deliveries load before either appends, so only the deterministic event ids (not the
    metadata check) can keep the second from writing."""
    order_id = await new_order(handle)
    first, second = add(order_id, idempotency_key="k"), add(order_id, idempotency_key="k")
    assert first.command_id != second.command_id
    store.before_append.append(lambda: handle(second))
    result = await handle(first)
    events = await stored(store, order_id)
    assert len(events) == 2
    assert events[-1].event_id == event_ids(second, 1)[0]
    assert result.version == 1


async def test_create_with_one_key_yields_one_order_sequentially_and_concurrently(
    store: InterferingStore, handle: Handle
) -> None:
    key = f"create-{uuid.uuid4()}"
    items = [NewItem(sku="A", quantity=1, unit_price=1)]

    def request() -> CreateOrder:
        return create(order_id_for_idempotency_key(key), items=items, idempotency_key=key)

    concurrent = await asyncio.gather(*(handle(request()) for _ in range(10)))
    later = await handle(request())
    assert len({*concurrent, later}) == 1
    assert later.order_id == order_id_for_idempotency_key(key)
    events = await stored(store, later.order_id)
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded"]


async def test_a_key_reused_for_a_different_request_is_refused(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    await handle(add(order_id, "A", 1, idempotency_key="k"))
    with pytest.raises(IdempotencyKeyReused) as caught:
        await handle(add(order_id, "A", 5, idempotency_key="k"))
    assert caught.value.rule == Rule.IDEMPOTENCY_KEY_REUSED
    with pytest.raises(IdempotencyKeyReused):
        await handle(CancelOrder(order_id=order_id, reason="r", idempotency_key="k"))
    assert len(await stored(store, order_id)) == 2


async def test_concurrent_different_requests_under_one_key_apply_once(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    outcomes = await asyncio.gather(
        handle(add(order_id, "A", 1, idempotency_key="k")),
        handle(add(order_id, "B", 1, idempotency_key="k")),
        return_exceptions=True,
    )
    assert sum(isinstance(o, CommandResult) for o in outcomes) == 1
    assert sum(isinstance(o, IdempotencyKeyReused) for o in outcomes) == 1
    assert len(await stored(store, order_id)) == 2


async def test_a_create_key_reused_by_another_customer_is_refused(
    handle: Handle,
) -> None:
    key = f"create-{uuid.uuid4()}"
    order_id = order_id_for_idempotency_key(key)
    await handle(create(order_id, idempotency_key=key))
    with pytest.raises(IdempotencyKeyReused):
        await handle(create(order_id, customer_id="customer-2", idempotency_key=key))


async def test_keyed_event_ids_are_deterministic(store: InterferingStore, handle: Handle) -> None:
    order_id = await new_order(handle)
    command = add(order_id, idempotency_key="k")
    await handle(command)
    events = await stored(store, order_id)
    assert events[-1].event_id == event_ids(add(order_id, idempotency_key="k"), 1)[0]
    assert json.loads(events[-1].metadata)["idempotency_key"] == "k"
