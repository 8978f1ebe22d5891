"""The limits agree with each other and are what the API publishes: the request models (and so
the OpenAPI document) state the domain's numbers, the commands bound no less than the requests,
and the API's address fits the stored one."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.contract import order_events
from write_side import commands
from write_side.domain import limits
from write_side.http import models


def properties(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = model.model_json_schema()["properties"]
    return found


def test_the_largest_order_is_payable_and_fits_in_64_bits() -> None:
    largest_total = limits.MAX_LINES * limits.MAX_QUANTITY * limits.MAX_UNIT_PRICE
    assert largest_total == limits.MAX_ORDER_TOTAL
    assert largest_total <= limits.MAX_PAYMENT
    assert limits.MIN_PAYMENT <= limits.MIN_UNIT_PRICE  # an order of free items is payable
    assert limits.MAX_PAYMENT < 2**63


def test_a_create_lists_no_more_items_than_an_order_has_lines() -> None:
    assert limits.MAX_ITEMS_ON_CREATE <= limits.MAX_LINES


@pytest.mark.parametrize(
    ("model", "field", "minimum", "maximum"),
    [
        (models.NewItemBody, "quantity", limits.MIN_QUANTITY, limits.MAX_QUANTITY),
        (models.NewItemBody, "unit_price", limits.MIN_UNIT_PRICE, limits.MAX_UNIT_PRICE),
        (models.AddItemBody, "quantity", limits.MIN_QUANTITY, limits.MAX_QUANTITY),
        (models.AddItemBody, "unit_price", limits.MIN_UNIT_PRICE, limits.MAX_UNIT_PRICE),
        (models.RecordPaymentBody, "amount", limits.MIN_PAYMENT, limits.MAX_PAYMENT),
    ],
)
def test_request_models_publish_the_domain_ranges(
    model: type[BaseModel], field: str, minimum: int, maximum: int
) -> None:
    schema = properties(model)[field]
    assert (schema["minimum"], schema["maximum"]) == (minimum, maximum)


@pytest.mark.parametrize(
    ("model", "field", "longest"),
    [
        (models.CreateOrderBody, "customer_id", limits.MAX_CUSTOMER_ID_LENGTH),
        (models.NewItemBody, "sku", limits.MAX_SKU_LENGTH),
        (models.ShipOrderBody, "carrier", limits.MAX_CARRIER_LENGTH),
        (models.ShipOrderBody, "tracking_number", limits.MAX_TRACKING_NUMBER_LENGTH),
        (models.CancelOrderBody, "reason", limits.MAX_CANCEL_REASON_LENGTH),
        (models.Address, "line1", limits.MAX_ADDRESS_LINE_LENGTH),
        (models.Address, "line2", limits.MAX_ADDRESS_LINE_LENGTH),
        (models.Address, "city", limits.MAX_CITY_LENGTH),
        (models.Address, "postal_code", limits.MAX_POSTAL_CODE_LENGTH),
    ],
)
def test_request_models_take_text_up_to_the_domain_length(
    model: type[BaseModel], field: str, longest: int
) -> None:
    """Whether the field states a length or a pattern, ``longest`` characters pass and one
    more does not."""
    info = model.model_fields[field]
    adapter: TypeAdapter[str] = TypeAdapter(Annotated[info.annotation, info])
    assert adapter.validate_python("a" * longest) == "a" * longest
    with pytest.raises(ValidationError):
        adapter.validate_python("a" * (longest + 1))


def test_the_item_count_is_the_domain_limit_in_request_and_command() -> None:
    assert properties(models.CreateOrderBody)["items"]["maxItems"] == limits.MAX_ITEMS_ON_CREATE
    assert properties(commands.CreateOrder)["items"]["maxItems"] == limits.MAX_ITEMS_ON_CREATE


@pytest.mark.parametrize(
    ("command", "field", "longest"),
    [
        (commands.CreateOrder, "customer_id", limits.MAX_CUSTOMER_ID_LENGTH),
        (commands.AddItem, "sku", limits.MAX_SKU_LENGTH),
        (commands.RemoveItem, "sku", limits.MAX_SKU_LENGTH),
        (commands.ShipOrder, "carrier", limits.MAX_CARRIER_LENGTH),
        (commands.ShipOrder, "tracking_number", limits.MAX_TRACKING_NUMBER_LENGTH),
        (commands.CancelOrder, "reason", limits.MAX_CANCEL_REASON_LENGTH),
    ],
)
def test_commands_bound_text_to_the_domain_length(
    command: type[BaseModel], field: str, longest: int
) -> None:
    assert properties(command)[field]["maxLength"] == longest


def test_the_api_address_fits_the_stored_address() -> None:
    """Every address the API takes converts into the event's value object: no field the
    request allows longer, shorter or in another form than the stored address does."""
    request = models.Address.model_json_schema()
    stored = order_events.Address.model_json_schema()
    assert set(request["properties"]) == set(stored["properties"])
    assert set(stored.get("required", [])) <= set(request.get("required", []))
    for name, field in request["properties"].items():
        kept = stored["properties"][name]
        assert field.get("maxLength", 0) <= kept.get("maxLength", float("inf")), name
        assert field.get("minLength", 0) >= kept.get("minLength", 0), name
        assert field.get("pattern") == kept.get("pattern"), name
