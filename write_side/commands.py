"""The write side's commands: what a client may ask an order to do.

Commands check shape: types, string lengths, how many items (bounds from
``write_side.domain.limits``). Ranges of values (quantity, unit price) and every state-dependent
rule (currency, order status, exact payment, ...) are domain rules, so a command that breaks one
raises a ``RuleViolation`` naming the rule, not a validation error. Over HTTP a value out of
range never gets this far: the request models hold quantities, prices and payments to the
same limits and answer 422 first; the rules answer callers that build commands themselves.
Amounts are strict integers in minor units: ``"5"`` or ``5.0`` are rejected, not coerced.

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
from write_side.domain import limits

Sku = Annotated[str, Field(max_length=limits.MAX_SKU_LENGTH)]
Quantity = Annotated[int, Field(strict=True)]
MinorUnits = Annotated[int, Field(strict=True)]
# Lengths of the identifiers a request carries besides its content (the HTTP API holds the
# Idempotency-Key header to these too).
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_TRACE_ID_LENGTH = 255


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
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH
    )
    correlation_id: str | None = Field(default=None, max_length=MAX_TRACE_ID_LENGTH)
    causation_id: str | None = Field(default=None, max_length=MAX_TRACE_ID_LENGTH)


class CreateOrder(OrderCommand):
    customer_id: Annotated[str, Field(max_length=limits.MAX_CUSTOMER_ID_LENGTH)]
    currency: Annotated[str, Field(max_length=3)]
    shipping_address: Address
    items: Annotated[list[NewItem], Field(max_length=limits.MAX_ITEMS_ON_CREATE)] = Field(
        default_factory=list
    )


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
    carrier: Annotated[str, Field(min_length=1, max_length=limits.MAX_CARRIER_LENGTH)]
    tracking_number: Annotated[
        str, Field(min_length=1, max_length=limits.MAX_TRACKING_NUMBER_LENGTH)
    ]


class CancelOrder(OrderCommand):
    reason: Annotated[str, Field(min_length=1, max_length=limits.MAX_CANCEL_REASON_LENGTH)]
