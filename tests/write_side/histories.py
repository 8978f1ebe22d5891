"""Order histories by status, and helpers to state given / when / then compactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from shared.contract.order_events import (
    ItemAdded,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
)
from shared.contract.versioned_events import Event
from tests.write_side.support import ADDRESS, order_created
from write_side.commands import (
    AddItem,
    CancelOrder,
    ChangeShippingAddress,
    CreateOrder,
    OrderCommand,
    PlaceOrder,
    RecordPayment,
    RemoveItem,
    ShipOrder,
)
from write_side.domain import decide
from write_side.domain.order import fold

ID = UUID("9d2b7a4e-0f51-4c3a-8e0b-5d6c7f8a9b01")

# The decision of each command on an existing order, as build_command_bus registers them (the
# handler tests run every command through the bus itself).
ON_AN_ORDER: dict[type[OrderCommand], Callable[[Any, Any], list[Event]]] = {
    AddItem: decide.add_item,
    RemoveItem: decide.remove_item,
    ChangeShippingAddress: decide.change_shipping_address,
    PlaceOrder: decide.place_order,
    RecordPayment: decide.record_payment,
    ShipOrder: decide.ship_order,
    CancelOrder: decide.cancel_order,
}


def when(given: list[Event], command: OrderCommand) -> list[Event]:
    """The events ``command`` decides on the order ``given`` describes (pure: no store)."""
    state = fold(given)
    if isinstance(command, CreateOrder):
        return decide.create_order(state, command)
    assert state is not None, "only CreateOrder decides on an order that does not exist"
    return ON_AN_ORDER[type(command)](state, command)


# Histories an order can have, by status.
CREATED: list[Event] = [order_created(ID)]
WITH_ITEMS: list[Event] = [
    *CREATED,
    ItemAdded(order_id=ID, sku="A", quantity=2, unit_price=150),
    ItemAdded(order_id=ID, sku="B", quantity=1, unit_price=1000),
]
PLACED: list[Event] = [
    *WITH_ITEMS,
    OrderPlaced(
        order_id=ID,
        customer_id="customer-1",
        currency="EUR",
        lines=(
            OrderLine(sku="A", quantity=2, unit_price=150),
            OrderLine(sku="B", quantity=1, unit_price=1000),
        ),
        total=1300,
    ),
]
PAID: list[Event] = [
    *PLACED,
    PaymentReceived(order_id=ID, customer_id="customer-1", currency="EUR", amount=1300),
]
SHIPPED: list[Event] = [
    *PAID,
    OrderShipped(order_id=ID, customer_id="customer-1", carrier="DHL", tracking_number="T1"),
]
CANCELLED: list[Event] = [
    *WITH_ITEMS,
    OrderCancelled(
        order_id=ID, customer_id="customer-1", reason="r", previous_status="draft", refund_due=0
    ),
]
BY_STATUS = {
    "draft": WITH_ITEMS,
    "placed": PLACED,
    "paid": PAID,
    "shipped": SHIPPED,
    "cancelled": CANCELLED,
}


def create(**overrides: object) -> CreateOrder:
    fields: dict[str, object] = {
        "order_id": ID,
        "customer_id": "customer-1",
        "currency": "EUR",
        "shipping_address": ADDRESS,
    }
    return CreateOrder.model_validate({**fields, **overrides})


def add(sku: str = "A", quantity: int = 1, unit_price: int = 150) -> AddItem:
    return AddItem(order_id=ID, sku=sku, quantity=quantity, unit_price=unit_price)


def many_lines(count: int) -> list[Event]:
    return [
        *CREATED,
        *(ItemAdded(order_id=ID, sku=f"S{i}", quantity=1, unit_price=1) for i in range(count)),
    ]


# Every rule, with a history and a command that break it. The completeness test below keeps
# this table honest: a rule added to ``Rule`` without a case here fails the suite.
