"""The cache of recently decided orders: another process (here: another bus over the same store)
writing behind it is seen before anything is decided or answered, a repeated idempotency key is
answered from it, a write that lost its compare-and-set is never taken for done, and it holds no
more orders than its bound."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from uuid import UUID

import pytest

from shared.contract.order_events import order_stream
from shared.ports.event_store import ConcurrencyError, RecordedEvent
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
from write_side.domain import decide
from write_side.domain.limits import MAX_QUANTITY
from write_side.domain.rules import Rule
from write_side.errors import IdempotencyKeyReused, RuleViolation, VersionMismatch
from write_side.order_cache import OrderCache
from write_side.repository import LoadedOrder, OrderRepository


class CountingStore(InterferingStore):
    """Counts stream reads: a command answered from the cache reads nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        self.reads += 1
        return await super().read_stream(stream)


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def other(store: CountingStore) -> Handle:
    """A second process: its own bus, so its own cache, over the same store."""
    return handler_over(store, max_backoff_s=0.01)


async def quantity_of(store: InterferingStore, order_id: UUID, sku: str) -> int | None:
    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None
    line = loaded.state.line(sku)
    return None if line is None else line.quantity


# --- another process writes behind the cache ---


async def test_a_write_behind_the_cache_is_decided_on_and_never_overwritten(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = await new_order(handle)
    await handle(add(order_id, "A", 1))
    await other(add(order_id, "A", 600))
    # 1 + 500 fits the cached order; 601 + 500 is over the line maximum.
    with pytest.raises(RuleViolation) as caught:
        await handle(add(order_id, "A", 500))
    assert caught.value.rule == Rule.LINE_QUANTITY_EXCEEDS_MAX
    assert len(await stored(store, order_id)) == 3
    result = await handle(add(order_id, "A", MAX_QUANTITY - 601))
    assert result.version == 3
    assert await quantity_of(store, order_id, "A") == MAX_QUANTITY


async def test_an_order_placed_elsewhere_is_not_changed_through_a_stale_cache(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = await new_order(handle)
    await handle(add(order_id, "A", 1))
    await other(PlaceOrder(order_id=order_id))
    with pytest.raises(RuleViolation) as caught:
        await handle(add(order_id, "B", 1))
    assert caught.value.rule == Rule.ORDER_NOT_DRAFT
    assert [e.type for e in await stored(store, order_id)] == [
        "OrderCreated",
        "ItemAdded",
        "OrderPlaced",
    ]


async def test_what_the_cached_order_refuses_is_decided_again_on_a_fresh_read(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = await new_order(handle)
    added = await other(add(order_id, "X", 1))
    # On the cached order X is not there and the version is 0: both would be refused.
    removed = await handle(RemoveItem(order_id=order_id, sku="X", expected_version=added.version))
    assert removed.version == added.version + 1
    await handle(ChangeShippingAddress(order_id=order_id, shipping_address=OTHER_ADDRESS))
    await other(ChangeShippingAddress(order_id=order_id, shipping_address=ADDRESS))
    # On the cached order the address is already the other one: nothing to decide there.
    changed = await handle(ChangeShippingAddress(order_id=order_id, shipping_address=OTHER_ADDRESS))
    events = await stored(store, order_id)
    assert events[-1].type == "ShippingAddressChanged"
    assert (changed.version, changed.position) == (events[-1].revision, events[-1].position)
    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None and loaded.state.shipping_address == OTHER_ADDRESS


async def test_a_pinned_version_is_checked_against_the_order_not_the_cache(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = await new_order(handle)
    await other(add(order_id, "A", 1))
    # The cache says version 0, which the client also pinned: the order is at 1.
    with pytest.raises(VersionMismatch) as caught:
        await handle(add(order_id, "B", 1, expected_version=0))
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert len(await stored(store, order_id)) == 2


async def test_a_key_applied_by_another_process_answers_its_first_result(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = await new_order(handle)
    await other(add(order_id, "A", 1))
    first = await other(add(order_id, "B", 2, idempotency_key="k"))
    # The repeat reaches the process whose cached order has never seen the key.
    again = await handle(add(order_id, "B", 2, idempotency_key="k"))
    pinned = await handle(add(order_id, "B", 2, idempotency_key="k", expected_version=0))
    assert again == first and pinned == first
    with pytest.raises(IdempotencyKeyReused):
        await handle(add(order_id, "B", 3, idempotency_key="k"))
    assert [e.type for e in await stored(store, order_id)] == ["OrderCreated"] + ["ItemAdded"] * 2


async def test_an_order_created_by_another_process_is_not_created_again(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = uuid.uuid4()
    await other(create(order_id))
    with pytest.raises(RuleViolation) as caught:
        await handle(create(order_id))
    assert caught.value.rule == Rule.ORDER_ALREADY_EXISTS
    assert (await handle(add(order_id))).version == 1


# --- exactly once ---


async def test_a_write_that_lost_its_compare_and_set_is_not_taken_for_done(
    store: CountingStore, handle: Handle, other: Handle
) -> None:
    order_id = await new_order(handle)
    store.before_append.append(lambda: other(add(order_id, "A", 2)))
    result = await handle(add(order_id, "A", 3))
    assert result.version == 2
    # The process that lost its first append goes on from the order as written, not from the
    # order as it would have been had that append won.
    assert (await handle(add(order_id, "A", 4))).version == 3
    assert await quantity_of(store, order_id, "A") == 9
    assert [e.revision for e in await stored(store, order_id)] == [0, 1, 2, 3]


async def test_a_command_that_gave_up_leaves_nothing_of_its_writes_behind(
    store: CountingStore, other: Handle
) -> None:
    handle = handler_over(store, max_attempts=1)
    order_id = await new_order(handle)
    store.before_append.extend(lambda: other(add(order_id, "A", 2)) for _ in range(2))
    with pytest.raises(ConcurrencyError):
        await handle(add(order_id, "A", 3))
    await handle(add(order_id, "A", 1))
    await handle(PlaceOrder(order_id=order_id))
    placed = json.loads((await stored(store, order_id))[-1].data)
    # The lines placed are those written (2 + 2 + 1), with nothing of the lost 3.
    assert [(line["sku"], line["quantity"]) for line in placed["lines"]] == [("A", 5)]
    assert placed["total"] == 5 * 100


async def test_a_stale_cache_costs_no_conflict_when_one_attempt_is_allowed(
    store: CountingStore, other: Handle
) -> None:
    handle = handler_over(store, max_attempts=1)
    order_id = await new_order(handle)
    await other(add(order_id, "A", 1))
    assert (await handle(add(order_id, "B", 1))).version == 2


async def test_conflicts_on_a_cached_order_still_give_up_after_the_attempt_budget(
    store: CountingStore, other: Handle
) -> None:
    handle = handler_over(store, max_attempts=2, max_backoff_s=0)
    order_id = await new_order(handle)
    store.before_append.extend(lambda: other(add(order_id, "B")) for _ in range(2))
    with pytest.raises(ConcurrencyError):
        await handle(add(order_id, "A"))
    assert [e.type for e in await stored(store, order_id)][1:] == ["ItemAdded"] * 2


# --- answered from the cache ---


async def test_a_repeated_key_is_answered_from_the_warm_cache(
    store: CountingStore, handle: Handle
) -> None:
    order_id = uuid.uuid4()
    created = await handle(create(order_id, idempotency_key="c"))
    first = await handle(add(order_id, "A", 2, idempotency_key="k"))
    await handle(add(order_id, "B", 1))
    assert await handle(add(order_id, "A", 2, idempotency_key="k")) == first
    assert await handle(create(order_id, idempotency_key="c")) == created
    with pytest.raises(IdempotencyKeyReused):
        await handle(add(order_id, "A", 5, idempotency_key="k"))
    # Every command above was decided or answered on the order this process kept; only the
    # refusal was checked against a fresh read.
    assert store.reads == 1
    assert [e.type for e in await stored(store, order_id)] == ["OrderCreated"] + ["ItemAdded"] * 2


async def test_the_cache_holds_at_most_its_bound_least_recently_used_out_first(
    store: CountingStore,
) -> None:
    handle = handler_over(store, cached_orders=2)
    first, second, third = [await new_order(handle) for _ in range(3)]  # the first is out
    await handle(add(second))  # now the third is the least recently used
    fourth = await new_order(handle)
    assert store.reads == 0
    await handle(add(fourth))
    await handle(add(second))
    assert store.reads == 0
    await handle(add(third))
    await handle(add(first))
    assert store.reads == 2


async def test_a_cache_of_size_zero_reads_every_order(store: CountingStore) -> None:
    handle = handler_over(store, cached_orders=0)
    order_id = await new_order(handle)
    for sku in "ABC":
        await handle(add(order_id, sku))
    assert store.reads == 3  # each add (a create needs no read: the store refuses a second)


def test_the_lru_bound_and_order() -> None:
    cache = OrderCache(2)
    orders = [LoadedOrder(uuid.uuid4(), None, 0, 1) for _ in range(3)]
    for order in orders[:2]:
        cache.remember(order)
    assert cache.get(orders[0].order_id) is orders[0]
    cache.remember(orders[2])
    assert len(cache) == 2
    assert orders[1].order_id not in cache
    assert orders[0].order_id in cache and orders[2].order_id in cache
    with pytest.raises(ValueError):
        OrderCache(-1)


def test_a_later_entry_is_kept_and_forgetting_an_earlier_revision_keeps_it() -> None:
    cache = OrderCache(10)
    order_id = uuid.uuid4()
    at_3, at_5 = LoadedOrder(order_id, None, 3, 30), LoadedOrder(order_id, None, 5, 50)
    cache.remember(at_5)
    cache.remember(at_3)  # a slower command finishing late
    assert cache.get(order_id) is at_5
    cache.forget(order_id, 3)  # a write at 3 lost: the entry at 5 is newer than that
    assert cache.get(order_id) is at_5
    cache.forget(order_id, None)  # a create lost: the order kept here is later than that
    assert cache.get(order_id) is at_5
    cache.forget(order_id, 5)
    assert cache.get(order_id) is None
    cache.remember(LoadedOrder(order_id, None, None, None))  # an order that does not exist
    assert order_id not in cache


# --- the cached order is the order as stored ---


def lifecycle(order_id: UUID) -> Sequence[OrderCommand]:
    return [
        create(order_id, items=[NewItem(sku="A", quantity=1, unit_price=100)], idempotency_key="c"),
        add(order_id, "A", 2, idempotency_key="a"),
        add(order_id, "B", 1),
        RemoveItem(order_id=order_id, sku="B", idempotency_key="r"),
        ChangeShippingAddress(order_id=order_id, shipping_address=OTHER_ADDRESS),
        PlaceOrder(order_id=order_id, idempotency_key="p"),
        RecordPayment(order_id=order_id, amount=300),
        ShipOrder(order_id=order_id, carrier="DHL", tracking_number="T1"),
    ]


async def test_the_order_after_an_append_is_the_order_a_fresh_load_reads(
    store: CountingStore,
) -> None:
    repository = OrderRepository(store)
    order_id = uuid.uuid4()
    decisions = {
        "CreateOrder": decide.create_order,
        "AddItem": decide.add_item,
        "RemoveItem": decide.remove_item,
        "ChangeShippingAddress": decide.change_shipping_address,
        "PlaceOrder": decide.place_order,
        "RecordPayment": decide.record_payment,
        "ShipOrder": decide.ship_order,
        "CancelOrder": decide.cancel_order,
    }
    commands = [*lifecycle(order_id)]
    commands[-1:] = [CancelOrder(order_id=order_id, reason="r", idempotency_key="x")]
    for command in commands:
        loaded = await repository.load(order_id)
        events = decisions[type(command).__name__](loaded.state, command)
        result = await repository.save(command, loaded.expected, events)
        assert loaded.after_append(command, events, result) == await repository.load(order_id)


async def test_an_order_lives_through_the_cache_as_through_fresh_reads(
    store: CountingStore,
) -> None:
    cached, uncached = handler_over(store), handler_over(store, cached_orders=0)
    first, second = uuid.uuid4(), uuid.uuid4()
    for one, other_one in zip(lifecycle(first), lifecycle(second), strict=True):
        assert (await cached(one)).version == (await uncached(other_one)).version
    loaded = [await OrderRepository(store).load(o) for o in (first, second)]
    assert loaded[0].state is not None and loaded[1].state is not None
    assert loaded[0].state.lines == loaded[1].state.lines
    assert (loaded[0].state.status, loaded[0].state.amount_paid) == ("shipped", 300)
    streams = [await store.read_stream(order_stream(o)) for o in (first, second)]
    assert [e.type for e in streams[0]] == [e.type for e in streams[1]]
