"""Request and response bodies of the command API.

Validation is strict on purpose: money and quantities are JSON integers (``12.5`` and ``"12"`` are
rejected, never rounded or parsed), unknown fields are rejected, and every string is bounded.
JSON has one number type, and JSON Schema counts ``12.0`` as an integer: so does this API (it
becomes the int 12; the bounds then apply to it, so ``1e300`` is out of range, not an error).
These checks are about shape; business rules (draft only, exact outstanding amount, …) belong to
the command handlers and answer 409.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, StrictInt, StrictStr

from shared.contract.order_events import Address

# Integer minor units; the upper bound keeps any order total far inside int64 (MongoDB, JSON).
MAX_MINOR_UNITS = 10**12
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


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
Quantity = Annotated[StrictInt, Field(ge=1, le=1000, examples=[2]), INTEGRAL_FLOAT]
MinorUnits = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_MINOR_UNITS, description="integer minor units (cents)", examples=[1250]),
    INTEGRAL_FLOAT,
]
# Zero is a valid amount: an order of free items is paid with 0 (the domain checks it equals
# the outstanding amount).
PaymentMinorUnits = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_MINOR_UNITS * 1000, description="integer minor units", examples=[2500]),
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


class NewItemBody(_Body):
    sku: Sku
    quantity: Quantity
    unit_price: MinorUnits


class CreateOrderBody(_Body):
    customer_id: Annotated[
        StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$", examples=["cust-42"])
    ]
    currency: Currency
    shipping_address: Address
    items: Annotated[list[NewItemBody], Field(max_length=100)] = []

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


class AddItemBody(NewItemBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sku": "SKU-RED-MUG", "quantity": 2, "unit_price": 1250}]}
    )


class ChangeShippingAddressBody(_Body):
    shipping_address: Address

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"shipping_address": ADDRESS_EXAMPLE}]}
    )


class RecordPaymentBody(_Body):
    amount: PaymentMinorUnits


class ShipOrderBody(_Body):
    carrier: Annotated[StrictStr, Field(min_length=1, max_length=100, examples=["DHL"])]
    tracking_number: Annotated[
        StrictStr, Field(pattern=r"^[A-Za-z0-9-]{1,64}$", examples=["JD014600006281230704"])
    ]


class CancelOrderBody(_Body):
    reason: Annotated[
        StrictStr, Field(min_length=1, max_length=200, examples=["customer changed their mind"])
    ]


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
