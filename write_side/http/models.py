"""Request and response bodies of the command API, and how each request body becomes its command.

These are the API's own models: the stored events' value objects (``shared.contract``) are
reached only through the conversions here, so changing an event does not change the API.

Validation is strict on purpose: money and quantities are JSON integers (``12.5`` and ``"12"`` are
rejected, never rounded or parsed), unknown fields are rejected, and every string is bounded.
JSON has one number type, and JSON Schema counts ``12.0`` as an integer: so does this API (it
becomes the int 12; the bounds then apply to it, so ``1e300`` is out of range, not an error).
Every bound comes from ``write_side.domain.limits``, the same numbers the domain rules hold
orders to, so the OpenAPI document states them and a value out of range is a 422 here rather
than a 409 from the rule. Business rules on the order's state (draft only, exact outstanding
amount, …) belong to the command handlers and answer 409.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, StrictInt, StrictStr

from shared.contract import order_events
from write_side.commands import (
    AddItem,
    CancelOrder,
    ChangeShippingAddress,
    CreateOrder,
    NewItem,
    RecordPayment,
    ShipOrder,
)
from write_side.domain import limits

SKU_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.MAX_SKU_LENGTH - 1}}}$"
CUSTOMER_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:@-]{{0,{limits.MAX_CUSTOMER_ID_LENGTH - 1}}}$"
TRACKING_NUMBER_PATTERN = rf"^[A-Za-z0-9-]{{1,{limits.MAX_TRACKING_NUMBER_LENGTH}}}$"


def _integral_float_as_int(value: object) -> object:
    # Only an exactly integral float becomes an int; 12.5, inf and nan stay floats and fail
    # the strict integer check, a string or a bool is never converted.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Accepts a JSON integer written with a zero fraction. It goes last in ``Annotated``: after the
# bounds, so the JSON schema keeps them as minimum/maximum.
INTEGRAL_FLOAT = BeforeValidator(_integral_float_as_int)
Sku = Annotated[StrictStr, Field(pattern=SKU_PATTERN, examples=["SKU-RED-MUG"])]
Quantity = Annotated[
    StrictInt,
    Field(ge=limits.MIN_QUANTITY, le=limits.MAX_QUANTITY, examples=[2]),
    INTEGRAL_FLOAT,
]
MinorUnits = Annotated[
    StrictInt,
    Field(
        ge=limits.MIN_UNIT_PRICE,
        le=limits.MAX_UNIT_PRICE,
        description="integer minor units (cents)",
        examples=[1250],
    ),
    INTEGRAL_FLOAT,
]
# Zero is a valid amount: an order of free items is paid with 0 (the domain checks it equals
# the outstanding amount). The cap is the largest total an order can reach, so every order the
# API accepts can be paid.
PaymentMinorUnits = Annotated[
    StrictInt,
    Field(
        ge=limits.MIN_PAYMENT,
        le=limits.MAX_PAYMENT,
        description="integer minor units",
        examples=[2500],
    ),
    INTEGRAL_FLOAT,
]
Currency = Annotated[
    StrictStr, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["EUR"])
]

ADDRESS_EXAMPLE: dict[str, JsonValue] = {
    "line1": "1 Main Street",
    "line2": "",
    "city": "Dublin",
    "postal_code": "D01 F5P2",
    "country": "IE",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A postal address as the API takes it. The class keeps the name ``Address`` (the OpenAPI
# schema's name) and has no docstring (it would become the schema's description).
class Address(_Body):
    line1: Annotated[StrictStr, Field(min_length=1, max_length=limits.MAX_ADDRESS_LINE_LENGTH)]
    line2: Annotated[StrictStr, Field(max_length=limits.MAX_ADDRESS_LINE_LENGTH)] = ""
    city: Annotated[StrictStr, Field(min_length=1, max_length=limits.MAX_CITY_LENGTH)]
    postal_code: Annotated[StrictStr, Field(min_length=1, max_length=limits.MAX_POSTAL_CODE_LENGTH)]
    country: Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]

    def to_value(self) -> order_events.Address:
        """The address as the orders domain and its events hold it: the one conversion."""
        return order_events.Address(
            line1=self.line1,
            line2=self.line2,
            city=self.city,
            postal_code=self.postal_code,
            country=self.country,
        )


class NewItemBody(_Body):
    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits

    def to_item(self) -> NewItem:
        return NewItem(sku=self.sku, quantity=self.quantity, unit_price=self.unit_price)


class CreateOrderBody(_Body):
    customer_id: Annotated[StrictStr, Field(pattern=CUSTOMER_ID_PATTERN, examples=["cust-42"])]
    currency: Currency
    shipping_address: Address
    items: Annotated[list[NewItemBody], Field(max_length=limits.MAX_ITEMS_ON_CREATE)] = []

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "cust-42",
                    "currency": "EUR",
                    "shipping_address": ADDRESS_EXAMPLE,
                    "items": [{"sku": "SKU-RED-MUG", "quantity": 2, "unit_price": 1250}],
                }
            ]
        }
    )

    def command(self, order_id: UUID, **envelope: Any) -> CreateOrder:
        """``envelope``: the command's idempotency and correlation fields."""
        return CreateOrder(
            order_id=order_id,
            customer_id=self.customer_id,
            currency=self.currency,
            shipping_address=self.shipping_address.to_value(),
            items=[item.to_item() for item in self.items],
            **envelope,
        )


class AddItemBody(NewItemBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sku": "SKU-RED-MUG", "quantity": 2, "unit_price": 1250}]}
    )

    def command(self, order_id: UUID, **envelope: Any) -> AddItem:
        return AddItem(
            order_id=order_id,
            sku=self.sku,
            quantity=self.quantity,
            unit_price=self.unit_price,
            **envelope,
        )


class ChangeShippingAddressBody(_Body):
    shipping_address: Address

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"shipping_address": ADDRESS_EXAMPLE}]}
    )

    def command(self, order_id: UUID, **envelope: Any) -> ChangeShippingAddress:
        return ChangeShippingAddress(
            order_id=order_id, shipping_address=self.shipping_address.to_value(), **envelope
        )


class RecordPaymentBody(_Body):
    amount: PaymentMinorUnits

    def command(self, order_id: UUID, **envelope: Any) -> RecordPayment:
        return RecordPayment(order_id=order_id, amount=self.amount, **envelope)


class ShipOrderBody(_Body):
    carrier: Annotated[
        StrictStr,
        Field(min_length=1, max_length=limits.MAX_CARRIER_LENGTH, examples=["DHL"]),
    ]
    tracking_number: Annotated[
        StrictStr, Field(pattern=TRACKING_NUMBER_PATTERN, examples=["JD014600006281230704"])
    ]

    def command(self, order_id: UUID, **envelope: Any) -> ShipOrder:
        return ShipOrder(
            order_id=order_id,
            carrier=self.carrier,
            tracking_number=self.tracking_number,
            **envelope,
        )


class CancelOrderBody(_Body):
    reason: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=limits.MAX_CANCEL_REASON_LENGTH,
            examples=["customer changed their mind"],
        ),
    ]

    def command(self, order_id: UUID, **envelope: Any) -> CancelOrder:
        return CancelOrder(order_id=order_id, reason=self.reason, **envelope)


class CommandAccepted(BaseModel):
    """What every successful command answers (also in the ETag and X-Consistency-Token)."""

    order_id: UUID
    version: int = Field(description="stream revision of the order after the command (from 0)")
    position: int = Field(
        description="commit position of the command's last event; pass it to the read side as "
        "X-Consistency-Token to read your own write"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "0b6f1c1e-3b8e-4d1a-9f55-1d2c3b4a5e6f",
                    "version": 3,
                    "position": 18446,
                }
            ]
        }
    )
