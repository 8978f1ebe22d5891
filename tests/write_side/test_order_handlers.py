"""Handlers and repository against the in-memory event store: results, metadata, rule
violations, conflict retries and If-Match."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from shared.contract.versioned_events import EventMetadata
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import ConcurrencyError
from tests.write_side.support import (
    ADDRESS,
    OTHER_ADDRESS,
    Handle,
    InterferingStore,
    add,
    create,
    handler_over,
    new_order,
    stored,
)
from write_side.commands import (
    CancelOrder,
    ChangeShippingAddress,
    NewItem,
    OrderCommand,
    PlaceOrder,
    RecordPayment,
    RemoveItem,
    ShipOrder,
)
from write_side.domain.rules import Rule
from write_side.errors import OrderNotFound, RuleViolation, VersionMismatch
from write_side.handlers import CommandResult
from write_side.repository import OrderRepository

# --- appends and results ---


async def test_result_is_the_revision_and_position_of_the_last_event(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = uuid.uuid4()
    items = [NewItem(sku="A", quantity=1, unit_price=1), NewItem(sku="B", quantity=2, unit_price=3)]
    result = await handle(create(order_id, items=items))
    events = await stored(store, order_id)
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded", "ItemAdded"]
    assert result == CommandResult(order_id=order_id, version=2, position=events[-1].position)


async def test_an_order_lives_from_draft_to_shipped(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = uuid.uuid4()
    commands: list[OrderCommand] = [
        create(order_id),
        add(order_id, "A", 2),
        add(order_id, "B", 1),
        RemoveItem(order_id=order_id, sku="B"),
        ChangeShippingAddress(order_id=order_id, shipping_address=OTHER_ADDRESS),
        PlaceOrder(order_id=order_id),
        RecordPayment(order_id=order_id, amount=200),
        ShipOrder(order_id=order_id, carrier="DHL", tracking_number="T1"),
    ]
    results = [await handle(command) for command in commands]
    assert [r.version for r in results] == list(range(8))
    events = await stored(store, order_id)
    assert [r.position for r in results] == [e.position for e in events]
    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None
    assert (loaded.state.status, loaded.state.amount_paid) == ("shipped", 200)
    assert loaded.state.shipping_address == OTHER_ADDRESS


async def test_every_stored_event_carries_its_metadata(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = uuid.uuid4()
    command = create(
        order_id,
        items=[NewItem(sku="A", quantity=1, unit_price=1)],
        correlation_id="corr-1",
        idempotency_key="key-1",
    )
    await handle(command)
    follow_up = PlaceOrder(order_id=order_id, causation_id="cause-1")
    await handle(follow_up)
    metadata = [EventMetadata.from_json(e.metadata) for e in await stored(store, order_id)]
    assert [m.schema_version for m in metadata] == [2, 1, 1]
    for m in metadata[:2]:
        assert m.command_id == command.command_id
        assert m.correlation_id == "corr-1"
        assert m.causation_id == str(command.command_id)  # nothing caused it but itself
        assert m.occurred_at == command.timestamp
        assert m.idempotency_key == "key-1"
    placed = metadata[2]
    assert placed.command_id == follow_up.command_id
    assert placed.correlation_id == str(follow_up.command_id)
    assert placed.causation_id == "cause-1"
    assert placed.occurred_at == follow_up.timestamp
    assert placed.idempotency_key is None


async def test_unknown_order_raises_order_not_found(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = uuid.uuid4()
    with pytest.raises(OrderNotFound):
        await handle(add(order_id))
    with pytest.raises(OrderNotFound):
        await handle(add(order_id, expected_version=3))
    assert store.append_calls == 0


@pytest.mark.parametrize(
    "command",
    [
        add,
        lambda order_id: RemoveItem(order_id=order_id, sku="A"),
        lambda order_id: ChangeShippingAddress(order_id=order_id, shipping_address=ADDRESS),
        lambda order_id: PlaceOrder(order_id=order_id),
        lambda order_id: RecordPayment(order_id=order_id, amount=1),
        lambda order_id: ShipOrder(order_id=order_id, carrier="c", tracking_number="t"),
        lambda order_id: CancelOrder(order_id=order_id, reason="r"),
    ],
    ids=["add", "remove", "address", "place", "pay", "ship", "cancel"],
)
async def test_every_command_but_create_needs_an_existing_order(
    store: InterferingStore, handle: Handle, command: Callable[[uuid.UUID], OrderCommand]
) -> None:
    order_id = uuid.uuid4()
    with pytest.raises(OrderNotFound) as caught:
        await handle(command(order_id))
    assert caught.value.order_id == order_id
    assert store.append_calls == 0


async def test_a_rule_violation_appends_nothing(store: InterferingStore, handle: Handle) -> None:
    order_id = await new_order(handle)
    with pytest.raises(RuleViolation) as caught:
        await handle(PlaceOrder(order_id=order_id))
    assert caught.value.rule == Rule.PLACE_REQUIRES_ITEMS
    with pytest.raises(RuleViolation):
        await handle(create(order_id, items=[NewItem(sku="A", quantity=1, unit_price=-1)]))
    assert len(await stored(store, order_id)) == 1


async def test_creating_an_existing_order_is_a_rule_violation(
    handle: Handle,
) -> None:
    order_id = await new_order(handle)
    with pytest.raises(RuleViolation) as caught:
        await handle(create(order_id))
    assert caught.value.rule == Rule.ORDER_ALREADY_EXISTS


async def test_a_command_that_decides_nothing_returns_the_current_version(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    latest = await handle(add(order_id))
    calls = store.append_calls
    same = await handle(ChangeShippingAddress(order_id=order_id, shipping_address=ADDRESS))
    assert same == latest
    assert store.append_calls == calls


async def test_store_outage_propagates_without_writing(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    store.unavailable = True
    with pytest.raises(StoreUnavailable):
        await handle(add(order_id))
    store.unavailable = False
    assert len(await stored(store, order_id)) == 1


# --- conflicts ---


async def test_a_conflict_re_runs_the_decision_on_fresh_state(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    store.before_append.append(lambda: handle(add(order_id, "A", 2)))
    result = await handle(add(order_id, "A", 3))
    assert result.version == 2
    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None
    line = loaded.state.line("A")
    assert line is not None and line.quantity == 5


async def test_the_re_run_decision_sees_the_rules_on_fresh_state(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    store.before_append.append(lambda: handle(add(order_id, "A", 600)))
    # Fine on the state it first loaded, over the line maximum on the state after the conflict.
    with pytest.raises(RuleViolation) as caught:
        await handle(add(order_id, "A", 500))
    assert caught.value.rule == Rule.LINE_QUANTITY_EXCEEDS_MAX
    assert len(await stored(store, order_id)) == 2


async def test_concurrent_adds_all_succeed_and_quantities_sum(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    calls = store.append_calls
    results = await asyncio.gather(*(handle(add(order_id, "A", n)) for n in range(1, 11)))
    assert sorted(r.version for r in results) == list(range(1, 11))
    assert store.append_calls - calls > 10, "the adds did not actually compete"
    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None
    line = loaded.state.line("A")
    assert line is not None and line.quantity == sum(range(1, 11))


async def test_conflicts_give_up_after_the_attempt_budget(store: InterferingStore) -> None:
    handle = handler_over(store, max_attempts=3, max_backoff_s=0)
    order_id = await new_order(handle)
    rival = handler_over(store)
    store.before_append.extend(lambda: rival(add(order_id, "B")) for _ in range(3))
    with pytest.raises(ConcurrencyError):
        await handle(add(order_id, "A"))
    assert [e.type for e in await stored(store, order_id)][1:] == ["ItemAdded"] * 3


# --- If-Match ---


async def test_matching_expected_version_applies(handle: Handle) -> None:
    order_id = await new_order(handle)
    result = await handle(add(order_id, expected_version=0))
    assert result.version == 1


async def test_stale_expected_version_raises_version_mismatch(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    await handle(add(order_id))
    calls = store.append_calls
    with pytest.raises(VersionMismatch) as caught:
        await handle(add(order_id, expected_version=0))
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert store.append_calls == calls


async def test_a_conflict_at_append_time_is_a_version_mismatch_not_a_retry(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    store.before_append.append(lambda: handle(add(order_id, "B")))
    with pytest.raises(VersionMismatch) as caught:
        await handle(add(order_id, "A", expected_version=0))
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert [e.type for e in await stored(store, order_id)] == ["OrderCreated", "ItemAdded"]


async def test_concurrent_commands_with_one_expected_version_exactly_one_wins(
    store: InterferingStore, handle: Handle
) -> None:
    order_id = await new_order(handle)
    outcomes = await asyncio.gather(
        *(handle(add(order_id, f"S{n}", expected_version=0)) for n in range(8)),
        return_exceptions=True,
    )
    wins = [o for o in outcomes if isinstance(o, CommandResult)]
    assert len(wins) == 1 and wins[0].version == 1
    assert all(isinstance(o, VersionMismatch) for o in outcomes if o not in wins)
    assert len(await stored(store, order_id)) == 2
