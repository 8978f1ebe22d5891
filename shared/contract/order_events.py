"""The orders service's events: the contract between the write side and the projector.

Every event carries ``order_id``; status-changing events also carry ``customer_id`` so read models
keyed by customer need no lookups. Money is integer minor units of the order's currency.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.versioned_events import Event, EventRegistry, Payload

OrderStatus = Literal["draft", "placed", "paid", "shipped", "cancelled"]
ORDER_STREAM_PREFIX = "order-"


def order_stream(order_id: UUID) -> str:
    return f"{ORDER_STREAM_PREFIX}{order_id}"


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line1: str = Field(min_length=1, max_length=200)
    line2: str = Field(default="", max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str
    quantity: int
    unit_price: int


class OrderCreated(Event):
    event_type = "OrderCreated"
    schema_version = 2

    order_id: UUID
    customer_id: str
    currency: str
    shipping_address: Address


class ItemAdded(Event):
    """Adds ``quantity`` units of ``sku``; adding an existing SKU raises its quantity."""

    event_type = "ItemAdded"

    order_id: UUID
    sku: str
    quantity: int
    unit_price: int


class ItemRemoved(Event):
    event_type = "ItemRemoved"

    order_id: UUID
    sku: str


class ShippingAddressChanged(Event):
    event_type = "ShippingAddressChanged"

    order_id: UUID
    shipping_address: Address


class OrderPlaced(Event):
    """Snapshot of the lines and total at placing, so read models need no earlier events."""

    event_type = "OrderPlaced"

    order_id: UUID
    customer_id: str
    currency: str
    lines: tuple[OrderLine, ...]
    total: int


class PaymentReceived(Event):
    event_type = "PaymentReceived"

    order_id: UUID
    customer_id: str
    currency: str
    amount: int


class OrderShipped(Event):
    event_type = "OrderShipped"

    order_id: UUID
    customer_id: str
    carrier: str
    tracking_number: str


class OrderCancelled(Event):
    """``refund_due`` is the amount already paid (0 when nothing was paid)."""

    event_type = "OrderCancelled"

    order_id: UUID
    customer_id: str
    reason: str
    previous_status: OrderStatus
    refund_due: int


ORDER_EVENT_MODELS: tuple[type[Event], ...] = (
    OrderCreated,
    ItemAdded,
    ItemRemoved,
    ShippingAddressChanged,
    OrderPlaced,
    PaymentReceived,
    OrderShipped,
    OrderCancelled,
)
ORDER_EVENT_TYPES: tuple[str, ...] = tuple(model.event_type for model in ORDER_EVENT_MODELS)


def upcast_order_created_v1(payload: Payload) -> Payload:
    """v1 stored the shipping address as one string: "line1, [line2, ]postal_code city, COUNTRY".

    The string is split on commas; the last part is the country, the one before it
    "postal_code city", the first line1 and anything in between line2. Parts that cannot be
    recognised are kept in line1 so no information is lost.
    """
    raw = payload.get("shipping_address")
    if not isinstance(raw, str):
        return payload
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    address: dict[str, Any]
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-1].isalpha():
        postal_code, _, city = parts[-2].partition(" ")
        address = {
            "line1": parts[0],
            "line2": ", ".join(parts[1:-2]),
            "city": city.strip() or postal_code,
            "postal_code": postal_code,
            "country": parts[-1].upper(),
        }
    else:
        address = {
            "line1": raw,
            "line2": "",
            "city": "unknown",
            "postal_code": "unknown",
            "country": "ZZ",
        }
    return {**payload, "shipping_address": address}


def build_order_event_registry() -> EventRegistry:
    registry = EventRegistry()
    for model in ORDER_EVENT_MODELS:
        registry.register(model)
    registry.register_upcaster("OrderCreated", 1, upcast_order_created_v1)
    return registry
