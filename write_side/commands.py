"""The write side's commands: what a client may ask an order to do.

Commands check shape only (types, lengths). The business rules (quantity range, prices,
currency, order status, ...) belong to the domain, so breaking one is a ``RuleViolation`` naming
the rule, not a validation error. Amounts are strict integers in minor units: ``"5"`` or ``5.0``
are rejected rather than coerced.

Every command may carry the client's concurrency and idempotency intent:
``expected_version`` (from ``If-Match``) pins the stream revision the client last saw;
``idempotency_key`` (from ``Idempotency-Key``) makes a repeat return the first result.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.order_events import Address
from shared.messaging.messages import Command

Sku = Annotated[str, Field(max_length=64)]
Quantity = Annotated[int, Field(strict=True)]
MinorUnits = Annotated[int, Field(strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=200)]

# Fixed namespace: order ids derived from idempotency keys must never change between releases.
_CREATE_ORDER_NAMESPACE = UUID("5b0f6c1e-3f57-4c0e-9a43-8f1d2e7a6c10")


def order_id_for_idempotency_key(key: str) -> UUID:
    """The order id for ``POST /orders`` with this ``Idempotency-Key``: the same key always
    yields the same order, so a repeated create lands on the stream the first one wrote."""
    return uuid.uuid5(_CREATE_ORDER_NAMESPACE, key)


class NewItem(BaseModel):
    """An item to put on an order. Range checks are domain rules (see module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits


class OrderCommand(Command):
    """Base of every command on one order."""

    order_id: UUID
    expected_version: int | None = Field(default=None, ge=0)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    correlation_id: str | None = Field(default=None, max_length=255)
    causation_id: str | None = Field(default=None, max_length=255)


class CreateOrder(OrderCommand):
    customer_id: Annotated[str, Field(max_length=100)]
    currency: Annotated[str, Field(max_length=3)]
    shipping_address: Address
    items: Annotated[list[NewItem], Field(max_length=200)] = Field(default_factory=list)


class AddItem(OrderCommand):
    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits


class RemoveItem(OrderCommand):
    sku: Sku


class ChangeShippingAddress(OrderCommand):
    shipping_address: Address


class PlaceOrder(OrderCommand):
    pass


class RecordPayment(OrderCommand):
    amount: MinorUnits


class ShipOrder(OrderCommand):
    carrier: Text
    tracking_number: Text


class CancelOrder(OrderCommand):
    reason: Text
