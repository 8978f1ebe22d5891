"""Commands check shape only; money and quantities are strict integers."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError

from tests.write_side.support import ADDRESS
from write_side.commands import AddItem, CreateOrder, RecordPayment, order_id_for_idempotency_key


@pytest.mark.parametrize("quantity", ["5", 5.0, 5.5, True, None])
def test_quantity_must_be_an_integer(quantity: object) -> None:
    with pytest.raises(ValidationError):
        AddItem.model_validate(
            {"order_id": uuid4(), "sku": "A", "quantity": quantity, "unit_price": 1}
        )


@pytest.mark.parametrize("amount", ["100", 100.0, 1.5])
def test_money_is_integer_minor_units(amount: object) -> None:
    with pytest.raises(ValidationError):
        RecordPayment.model_validate({"order_id": uuid4(), "amount": amount})


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        RecordPayment.model_validate({"order_id": uuid4(), "amount": 1, "discount": 1})


def test_expected_version_cannot_be_negative() -> None:
    with pytest.raises(ValidationError):
        RecordPayment(order_id=uuid4(), amount=1, expected_version=-1)


def test_commands_get_an_id_and_an_aware_timestamp() -> None:
    first = CreateOrder(order_id=uuid4(), customer_id="c", currency="EUR", shipping_address=ADDRESS)
    second = first.model_copy()
    assert first.timestamp.tzinfo is not None
    assert first.items == []
    assert AddItem(order_id=uuid4(), sku="A", quantity=1, unit_price=1).command_id != (
        second.command_id
    )


def test_order_id_for_an_idempotency_key_is_stable_and_key_specific() -> None:
    assert order_id_for_idempotency_key("k-1") == order_id_for_idempotency_key("k-1")
    assert order_id_for_idempotency_key("k-1") != order_id_for_idempotency_key("k-2")
