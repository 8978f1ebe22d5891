"""Decisions: one function per command, from an order's state and the command to the events it
causes or a RuleViolation.

``create_order`` takes ``None`` for an order that does not exist yet; every other decision acts
on an existing order (the command handler loads it, and answers ``OrderNotFound`` for a missing
one before any decision runs). The command bus picks the decision by the command's type: there
is no second dispatch here.

Pure: no I/O and no clock (a command's time travels in its metadata, not in the events). Every
rule is checked before any event is returned, so a violation changes nothing.
"""

from __future__ import annotations

from shared.contract.order_events import (
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    ShippingAddressChanged,
)
from shared.contract.versioned_events import Event
from write_side.commands import (
    AddItem,
    CancelOrder,
    ChangeShippingAddress,
    CreateOrder,
    PlaceOrder,
    RecordPayment,
    RemoveItem,
    ShipOrder,
)
from write_side.domain.currencies import is_order_currency
from write_side.domain.errors import RuleViolation
from write_side.domain.limits import (
    MAX_LINES,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    MIN_QUANTITY,
    MIN_UNIT_PRICE,
)
from write_side.domain.order import Order, evolve
from write_side.domain.rules import Rule


def create_order(state: Order | None, command: CreateOrder) -> list[Event]:
    """``OrderCreated`` then one ``ItemAdded`` per item, each checked against the order so far
    (so a SKU listed twice merges, exactly as two AddItem commands would)."""
    if state is not None:
        raise RuleViolation(Rule.ORDER_ALREADY_EXISTS, f"order {command.order_id} already exists")
    if not command.customer_id.strip():
        raise RuleViolation(Rule.CUSTOMER_ID_REQUIRED, "an order needs a customer id")
    if not is_order_currency(command.currency):
        raise RuleViolation(
            Rule.UNKNOWN_CURRENCY,
            f"{command.currency!r} is not an active ISO 4217 currency code (e.g. 'EUR')",
        )
    created = OrderCreated(
        order_id=command.order_id,
        customer_id=command.customer_id,
        currency=command.currency,
        shipping_address=command.shipping_address,
    )
    events: list[Event] = [created]
    order = evolve(None, created)
    for item in command.items:
        added = item_added(order, item.sku, item.quantity, item.unit_price)
        order = evolve(order, added)
        events.append(added)
    return events


def _require_draft(state: Order, action: str) -> None:
    if state.status != "draft":
        raise RuleViolation(
            Rule.ORDER_NOT_DRAFT, f"cannot {action}: the order is {state.status}, not draft"
        )


def add_item(state: Order, command: AddItem) -> list[Event]:
    return [item_added(state, command.sku, command.quantity, command.unit_price)]


def item_added(state: Order, sku: str, quantity: int, unit_price: int) -> ItemAdded:
    """Adding a SKU already on the order raises its quantity; its unit price must match.
    Quantity and unit price are held to ``limits`` here too: over HTTP the request models
    refuse an out-of-range value first (422), but commands built in-process reach this."""
    _require_draft(state, "change items")
    if not sku.strip():
        raise RuleViolation(Rule.SKU_REQUIRED, "an item needs a SKU")
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise RuleViolation(
            Rule.QUANTITY_OUT_OF_RANGE,
            f"quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}, got {quantity}",
        )
    if not MIN_UNIT_PRICE <= unit_price <= MAX_UNIT_PRICE:
        raise RuleViolation(
            Rule.UNIT_PRICE_OUT_OF_RANGE,
            f"unit price must be between {MIN_UNIT_PRICE} and {MAX_UNIT_PRICE} minor units, "
            f"got {unit_price}",
        )
    existing = state.line(sku)
    if existing is None:
        if len(state.lines) >= MAX_LINES:
            raise RuleViolation(
                Rule.TOO_MANY_LINES, f"an order holds at most {MAX_LINES} different SKUs"
            )
    else:
        if existing.unit_price != unit_price:
            raise RuleViolation(
                Rule.UNIT_PRICE_MISMATCH,
                f"{sku} is on the order at unit price {existing.unit_price}, not {unit_price}",
            )
        if existing.quantity + quantity > MAX_QUANTITY:
            raise RuleViolation(
                Rule.LINE_QUANTITY_EXCEEDS_MAX,
                f"{sku} would reach quantity {existing.quantity + quantity}, "
                f"over the maximum of {MAX_QUANTITY}",
            )
    return ItemAdded(order_id=state.order_id, sku=sku, quantity=quantity, unit_price=unit_price)


def remove_item(state: Order, command: RemoveItem) -> list[Event]:
    _require_draft(state, "change items")
    if state.line(command.sku) is None:
        raise RuleViolation(Rule.SKU_NOT_IN_ORDER, f"{command.sku} is not on the order")
    return [ItemRemoved(order_id=state.order_id, sku=command.sku)]


def change_shipping_address(state: Order, command: ChangeShippingAddress) -> list[Event]:
    """Changing to the address the order already has decides nothing."""
    _require_draft(state, "change the shipping address")
    if command.shipping_address == state.shipping_address:
        return []
    return [
        ShippingAddressChanged(order_id=state.order_id, shipping_address=command.shipping_address)
    ]


def place_order(state: Order, command: PlaceOrder) -> list[Event]:
    """Fixes the lines and the total. (The command carries nothing to decide on; it is taken
    so that every decision has the same shape.)"""
    _require_draft(state, "place the order")
    if not state.lines:
        raise RuleViolation(Rule.PLACE_REQUIRES_ITEMS, "an order needs at least one item")
    return [
        OrderPlaced(
            order_id=state.order_id,
            customer_id=state.customer_id,
            currency=state.currency,
            lines=state.lines,
            total=state.total,
        )
    ]


def record_payment(state: Order, command: RecordPayment) -> list[Event]:
    if state.status != "placed":
        raise RuleViolation(
            Rule.PAYMENT_REQUIRES_PLACED_ORDER,
            f"payment is taken for a placed order only; the order is {state.status}",
        )
    if command.amount != state.outstanding:
        raise RuleViolation(
            Rule.PAYMENT_MUST_EQUAL_OUTSTANDING,
            f"payment must be exactly the outstanding {state.outstanding} {state.currency} "
            f"minor units, got {command.amount}",
        )
    return [
        PaymentReceived(
            order_id=state.order_id,
            customer_id=state.customer_id,
            currency=state.currency,
            amount=command.amount,
        )
    ]


def ship_order(state: Order, command: ShipOrder) -> list[Event]:
    if state.status != "paid":
        raise RuleViolation(
            Rule.SHIP_REQUIRES_PAID_ORDER,
            f"only a paid order can ship; the order is {state.status}",
        )
    return [
        OrderShipped(
            order_id=state.order_id,
            customer_id=state.customer_id,
            carrier=command.carrier,
            tracking_number=command.tracking_number,
        )
    ]


def cancel_order(state: Order, command: CancelOrder) -> list[Event]:
    """A paid order is refundable: ``refund_due`` is what was paid."""
    if state.status == "shipped":
        raise RuleViolation(Rule.CANCEL_AFTER_SHIPPING, "a shipped order cannot be cancelled")
    if state.status == "cancelled":
        raise RuleViolation(Rule.ORDER_ALREADY_CANCELLED, "the order is already cancelled")
    return [
        OrderCancelled(
            order_id=state.order_id,
            customer_id=state.customer_id,
            reason=command.reason,
            previous_status=state.status,
            refund_due=state.amount_paid,
        )
    ]
