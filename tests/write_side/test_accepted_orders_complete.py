"""Property: every order the API's request models accept can be placed, paid in full and
shipped, through the same conversions the routes use and the command bus the app builds.

The generated values stay inside the bounds the request models publish (read from their JSON
schemas, i.e. the OpenAPI document), so the test follows the models if a bound moves, and the
largest possible order is always among the examples. Few examples, derandomized, no database:
fast and the same on every run.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared.contract.order_events import order_stream
from tests.fakes.event_store import InMemoryEventStore
from write_side.commands import PlaceOrder
from write_side.domain.currencies import ISO_4217_ACTIVE, is_order_currency
from write_side.domain.limits import MAX_ITEMS_ON_CREATE, MAX_QUANTITY, MAX_UNIT_PRICE
from write_side.handlers import build_command_bus
from write_side.http.models import (
    CUSTOMER_ID_PATTERN,
    TRACKING_NUMBER_PATTERN,
    Address,
    CreateOrderBody,
    NewItemBody,
    RecordPaymentBody,
    ShipOrderBody,
)
from write_side.repository import OrderRepository


def _schema(model: type[BaseModel], field: str) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()["properties"][field]
    return schema


def _integers(model: type[BaseModel], field: str) -> st.SearchStrategy[int]:
    bounds = _schema(model, field)
    return st.integers(int(bounds["minimum"]), int(bounds["maximum"]))


def _text(model: type[BaseModel], field: str) -> st.SearchStrategy[str]:
    bounds = _schema(model, field)
    return st.text(min_size=bounds.get("minLength", 0), max_size=bounds["maxLength"])


ORDER_CURRENCIES = sorted(code for code in ISO_4217_ACTIVE if is_order_currency(code))
addresses = st.fixed_dictionaries(
    {
        "line1": _text(Address, "line1"),
        "line2": _text(Address, "line2"),
        "city": _text(Address, "city"),
        "postal_code": _text(Address, "postal_code"),
        "country": st.from_regex(_schema(Address, "country")["pattern"], fullmatch=True),
    }
)


@st.composite
def order_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A create-order request body (JSON) within the request models' bounds, with distinct
    SKUs (a SKU twice is a different story: its line may outgrow the quantity cap)."""
    most = _schema(CreateOrderBody, "items")["maxItems"]
    count = draw(st.integers(1, most))
    quantities = _integers(NewItemBody, "quantity")
    prices = _integers(NewItemBody, "unit_price")
    return {
        "customer_id": draw(st.from_regex(CUSTOMER_ID_PATTERN, fullmatch=True)),
        "currency": draw(st.sampled_from(ORDER_CURRENCIES)),
        "shipping_address": draw(addresses),
        "items": [
            {"sku": f"SKU-{n}", "quantity": draw(quantities), "unit_price": draw(prices)}
            for n in range(count)
        ],
    }


shipments = st.fixed_dictionaries(
    {
        "carrier": _text(ShipOrderBody, "carrier"),
        "tracking_number": st.from_regex(TRACKING_NUMBER_PATTERN, fullmatch=True),
    }
)

LARGEST_ORDER = {
    "customer_id": "c",
    "currency": "EUR",
    "shipping_address": {
        "line1": "1",
        "line2": "",
        "city": "c",
        "postal_code": "1",
        "country": "IE",
    },
    "items": [
        {"sku": f"SKU-{n}", "quantity": MAX_QUANTITY, "unit_price": MAX_UNIT_PRICE}
        for n in range(MAX_ITEMS_ON_CREATE)
    ],
}
SHIPMENT = {"carrier": "DHL", "tracking_number": "T-1"}


async def _place_pay_and_ship(order: dict[str, Any], shipment: dict[str, Any]) -> None:
    store = InMemoryEventStore()
    bus = build_command_bus(store)
    order_id = uuid.uuid4()
    # Each request body is validated as the route's body is, and makes its command as the
    # route does (body.command).
    await bus.dispatch(CreateOrderBody.model_validate(order).command(order_id))
    await bus.dispatch(PlaceOrder(order_id=order_id))
    # What a client owes: the total of what it ordered.
    total = sum(item["quantity"] * item["unit_price"] for item in order["items"])
    payment = RecordPaymentBody.model_validate({"amount": total})
    await bus.dispatch(payment.command(order_id))
    shipped = await bus.dispatch(ShipOrderBody.model_validate(shipment).command(order_id))

    loaded = await OrderRepository(store).load(order_id)
    assert loaded.state is not None
    assert (loaded.state.status, loaded.state.amount_paid) == ("shipped", total)
    assert shipped.version == len(await store.read_stream(order_stream(order_id))) - 1


@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@example(order=LARGEST_ORDER, shipment=SHIPMENT)
@given(order=order_requests(), shipment=shipments)
def test_every_accepted_order_can_be_placed_paid_and_shipped(
    order: dict[str, Any], shipment: dict[str, Any]
) -> None:
    asyncio.run(_place_pay_and_ship(order, shipment))
