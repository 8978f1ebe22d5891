"""Given events / when command / then events, for every event. Pure: no I/O."""

from __future__ import annotations

from uuid import uuid4

import pytest

from shared.contract.order_events import (
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    ShippingAddressChanged,
)
from tests.write_side.histories import (
    BY_STATUS,
    CREATED,
    ID,
    PAID,
    PLACED,
    SHIPPED,
    WITH_ITEMS,
    add,
    create,
    many_lines,
    when,
)
from tests.write_side.support import ADDRESS, OTHER_ADDRESS, order_created
from write_side.commands import (
    CancelOrder,
    ChangeShippingAddress,
    NewItem,
    PlaceOrder,
    RecordPayment,
    RemoveItem,
    ShipOrder,
)
from write_side.domain.decide import add_item, create_order
from write_side.domain.limits import MAX_LINES, MAX_QUANTITY, MAX_UNIT_PRICE
from write_side.domain.order import CorruptOrderStream, Order, evolve, fold

# --- create ---


def test_create_records_order_created() -> None:
    assert when([], create()) == [order_created(ID)]


def test_create_with_items_records_each_item_and_merges_repeated_skus() -> None:
    command = create(
        items=[
            NewItem(sku="A", quantity=2, unit_price=5),
            NewItem(sku="B", quantity=1, unit_price=0),
            NewItem(sku="A", quantity=3, unit_price=5),
        ]
    )
    events = when([], command)
    assert events == [
        order_created(ID),
        ItemAdded(order_id=ID, sku="A", quantity=2, unit_price=5),
        ItemAdded(order_id=ID, sku="B", quantity=1, unit_price=0),
        ItemAdded(order_id=ID, sku="A", quantity=3, unit_price=5),
    ]
    state = fold(events)
    assert state is not None
    assert state.lines == (
        OrderLine(sku="A", quantity=5, unit_price=5),
        OrderLine(sku="B", quantity=1, unit_price=0),
    )


@pytest.mark.parametrize("currency", ["EUR", "USD", "JPY", "BHD", "XCG", "ZWG", "CHF"])
def test_create_accepts_active_iso_4217_codes(currency: str) -> None:
    assert when([], create(currency=currency)) == [order_created(ID, currency=currency)]


# --- items ---


def test_add_item_records_item_added() -> None:
    assert when(CREATED, add("A", 3, 150)) == [
        ItemAdded(order_id=ID, sku="A", quantity=3, unit_price=150)
    ]


@pytest.mark.parametrize(("quantity", "unit_price"), [(1, 0), (MAX_QUANTITY, MAX_UNIT_PRICE)])
def test_add_item_accepts_the_bounds(quantity: int, unit_price: int) -> None:
    assert len(when(CREATED, add("A", quantity, unit_price))) == 1


def test_adding_an_existing_sku_raises_its_quantity() -> None:
    events = when(WITH_ITEMS, add("A", 998, 150))
    state = fold([*WITH_ITEMS, *events])
    assert state is not None
    assert state.line("A") == OrderLine(sku="A", quantity=1000, unit_price=150)
    assert [line.sku for line in state.lines] == ["A", "B"]


def test_the_last_line_fits_under_the_cap() -> None:
    assert len(when(many_lines(MAX_LINES - 1), add("NEW", 1, 1))) == 1
    assert len(when(many_lines(MAX_LINES), add("S0", 1, 1))) == 1


def test_remove_item_records_item_removed_and_drops_the_line() -> None:
    events = when(WITH_ITEMS, RemoveItem(order_id=ID, sku="A"))
    assert events == [ItemRemoved(order_id=ID, sku="A")]
    state = fold([*WITH_ITEMS, *events])
    assert state is not None
    assert [line.sku for line in state.lines] == ["B"]


# --- address ---


def test_change_shipping_address_records_the_new_address() -> None:
    events = when(CREATED, ChangeShippingAddress(order_id=ID, shipping_address=OTHER_ADDRESS))
    assert events == [ShippingAddressChanged(order_id=ID, shipping_address=OTHER_ADDRESS)]
    state = fold([*CREATED, *events])
    assert state is not None
    assert state.shipping_address == OTHER_ADDRESS


def test_changing_to_the_same_address_decides_nothing() -> None:
    assert when(CREATED, ChangeShippingAddress(order_id=ID, shipping_address=ADDRESS)) == []


# --- place, pay, ship, cancel ---


def test_place_snapshots_lines_and_total() -> None:
    assert when(WITH_ITEMS, PlaceOrder(order_id=ID)) == [PLACED[-1]]


def test_payment_of_the_outstanding_amount_is_recorded() -> None:
    assert when(PLACED, RecordPayment(order_id=ID, amount=1300)) == [PAID[-1]]
    state = fold(PAID)
    assert state is not None
    assert (state.status, state.amount_paid, state.outstanding) == ("paid", 1300, 0)


def test_ship_a_paid_order() -> None:
    command = ShipOrder(order_id=ID, carrier="DHL", tracking_number="T1")
    assert when(PAID, command) == [SHIPPED[-1]]


@pytest.mark.parametrize(("status", "refund_due"), [("draft", 0), ("placed", 0), ("paid", 1300)])
def test_cancel_before_shipping_records_previous_status_and_refund(
    status: str, refund_due: int
) -> None:
    events = when(BY_STATUS[status], CancelOrder(order_id=ID, reason="changed my mind"))
    assert events == [
        OrderCancelled(
            order_id=ID,
            customer_id="customer-1",
            reason="changed my mind",
            previous_status=status,
            refund_due=refund_due,
        )
    ]
    state = fold([*BY_STATUS[status], *events])
    assert state is not None
    assert state.status == "cancelled"


# --- the fold ---


def test_fold_walks_the_whole_life_of_an_order() -> None:
    states = [fold(SHIPPED[: n + 1]) for n in range(len(SHIPPED))]
    assert [s.status for s in states if s is not None] == [
        "draft",
        "draft",
        "draft",
        "placed",
        "paid",
        "shipped",
    ]
    final = states[-1]
    assert final == Order(
        order_id=ID,
        customer_id="customer-1",
        currency="EUR",
        shipping_address=ADDRESS,
        status="shipped",
        lines=PLACED[-1].lines,  # type: ignore[attr-defined]
        amount_paid=1300,
    )


def test_evolve_refuses_impossible_histories() -> None:
    with pytest.raises(CorruptOrderStream):
        evolve(None, ItemAdded(order_id=ID, sku="A", quantity=1, unit_price=1))
    with pytest.raises(CorruptOrderStream):
        fold([order_created(ID), order_created(ID)])


def test_decide_does_not_touch_the_state_it_was_given() -> None:
    state = fold(WITH_ITEMS)
    assert state is not None
    add_item(state, add("A", 5, 150))
    assert state == fold(WITH_ITEMS)


def test_a_fresh_order_is_created_for_any_id() -> None:
    other = uuid4()
    events = create_order(None, create(order_id=other))
    assert isinstance(events[0], OrderCreated)
    assert events[0].order_id == other
