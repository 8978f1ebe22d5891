"""An order's state, rebuilt from its events: ``evolve`` applies one event, ``fold`` many.

Events are facts that already passed the rules, so ``evolve`` does not re-check them; it only
refuses sequences that no decision could have produced (e.g. an event before ``OrderCreated``),
because those mean the stream is corrupt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from uuid import UUID

from shared.contract.order_events import (
    Address,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentReceived,
    ShippingAddressChanged,
)
from shared.contract.versioned_events import Event


class CorruptOrderStream(Exception):
    """The events cannot belong to one order (a bug or a hand-edited stream)."""


@dataclass(frozen=True, slots=True)
class Order:
    """Immutable. ``lines`` keep the order in which SKUs were first added."""

    order_id: UUID
    customer_id: str
    currency: str
    shipping_address: Address
    status: OrderStatus = "draft"
    lines: tuple[OrderLine, ...] = ()
    amount_paid: int = 0

    @property
    def total(self) -> int:
        return sum(line.quantity * line.unit_price for line in self.lines)

    @property
    def outstanding(self) -> int:
        return self.total - self.amount_paid

    def line(self, sku: str) -> OrderLine | None:
        return next((line for line in self.lines if line.sku == sku), None)


def _with_item(order: Order, event: ItemAdded) -> Order:
    existing = order.line(event.sku)
    if existing is None:
        added = OrderLine(sku=event.sku, quantity=event.quantity, unit_price=event.unit_price)
        return replace(order, lines=(*order.lines, added))
    raised = existing.model_copy(update={"quantity": existing.quantity + event.quantity})
    return replace(order, lines=tuple(raised if ln.sku == event.sku else ln for ln in order.lines))


def evolve(state: Order | None, event: Event) -> Order:
    """The state after ``event``. ``None`` is the state of an order not yet created."""
    if state is None:
        if not isinstance(event, OrderCreated):
            raise CorruptOrderStream(f"{event.event_type} before OrderCreated")
        return Order(
            order_id=event.order_id,
            customer_id=event.customer_id,
            currency=event.currency,
            shipping_address=event.shipping_address,
        )
    match event:
        case OrderCreated():
            raise CorruptOrderStream(f"order {state.order_id} created twice")
        case ItemAdded():
            return _with_item(state, event)
        case ItemRemoved(sku=sku):
            return replace(state, lines=tuple(ln for ln in state.lines if ln.sku != sku))
        case ShippingAddressChanged(shipping_address=address):
            return replace(state, shipping_address=address)
        case OrderPlaced(lines=lines):
            return replace(state, status="placed", lines=lines)
        case PaymentReceived(amount=amount):
            return replace(state, status="paid", amount_paid=state.amount_paid + amount)
        case OrderShipped():
            return replace(state, status="shipped")
        case OrderCancelled():
            return replace(state, status="cancelled")
    raise CorruptOrderStream(f"not an order event: {event.event_type}")


def fold(events: Iterable[Event], state: Order | None = None) -> Order | None:
    """Apply ``events`` in order, starting from ``state`` (no order yet by default)."""
    for event in events:
        state = evolve(state, event)
    return state
