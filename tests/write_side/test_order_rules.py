"""Every rule: a history and a command that break it raise a RuleViolation naming the rule,
and nothing is decided. Pure: no I/O."""

from __future__ import annotations

import pytest

from shared.contract.order_events import ItemRemoved
from shared.contract.versioned_events import Event
from tests.write_side.histories import (
    BY_STATUS,
    CANCELLED,
    CREATED,
    ID,
    PLACED,
    SHIPPED,
    WITH_ITEMS,
    add,
    create,
    many_lines,
    when,
)
from tests.write_side.support import OTHER_ADDRESS
from write_side.commands import (
    CancelOrder,
    ChangeShippingAddress,
    OrderCommand,
    PlaceOrder,
    RecordPayment,
    RemoveItem,
    ShipOrder,
)
from write_side.domain.errors import RuleViolation
from write_side.domain.limits import MAX_LINES, MAX_QUANTITY, MAX_UNIT_PRICE, MIN_QUANTITY
from write_side.domain.order import fold
from write_side.domain.rules import Rule

VIOLATIONS: list[tuple[str, list[Event], OrderCommand, Rule]] = [
    ("create twice", CREATED, create(), Rule.ORDER_ALREADY_EXISTS),
    ("blank customer", [], create(customer_id="  "), Rule.CUSTOMER_ID_REQUIRED),
    ("lower-case currency", [], create(currency="eur"), Rule.UNKNOWN_CURRENCY),
    ("made-up currency", [], create(currency="ABC"), Rule.UNKNOWN_CURRENCY),
    ("withdrawn currency", [], create(currency="HRK"), Rule.UNKNOWN_CURRENCY),
    ("gold is no currency", [], create(currency="XAU"), Rule.UNKNOWN_CURRENCY),
    (
        "bad item on create",
        [],
        create(items=[{"sku": "A", "quantity": 0, "unit_price": 1}]),
        Rule.QUANTITY_OUT_OF_RANGE,
    ),
    (
        "same SKU at two prices on create",
        [],
        create(
            items=[
                {"sku": "A", "quantity": 1, "unit_price": 1},
                {"sku": "A", "quantity": 1, "unit_price": 2},
            ]
        ),
        Rule.UNIT_PRICE_MISMATCH,
    ),
    ("blank sku", CREATED, add(sku=" "), Rule.SKU_REQUIRED),
    ("quantity 0", CREATED, add(quantity=MIN_QUANTITY - 1), Rule.QUANTITY_OUT_OF_RANGE),
    ("quantity negative", CREATED, add(quantity=-1), Rule.QUANTITY_OUT_OF_RANGE),
    ("quantity over the cap", CREATED, add(quantity=MAX_QUANTITY + 1), Rule.QUANTITY_OUT_OF_RANGE),
    ("negative price", CREATED, add(unit_price=-1), Rule.UNIT_PRICE_OUT_OF_RANGE),
    (
        "price over the cap",
        CREATED,
        add(unit_price=MAX_UNIT_PRICE + 1),
        Rule.UNIT_PRICE_OUT_OF_RANGE,
    ),
    ("re-add at another price", WITH_ITEMS, add("A", 1, 151), Rule.UNIT_PRICE_MISMATCH),
    ("line over 1000", WITH_ITEMS, add("A", 999, 150), Rule.LINE_QUANTITY_EXCEEDS_MAX),
    ("too many lines", many_lines(MAX_LINES), add("NEW", 1, 1), Rule.TOO_MANY_LINES),
    ("add when placed", PLACED, add(), Rule.ORDER_NOT_DRAFT),
    ("remove unknown sku", WITH_ITEMS, RemoveItem(order_id=ID, sku="Z"), Rule.SKU_NOT_IN_ORDER),
    ("place empty", CREATED, PlaceOrder(order_id=ID), Rule.PLACE_REQUIRES_ITEMS),
    (
        "pay a draft",
        WITH_ITEMS,
        RecordPayment(order_id=ID, amount=1300),
        Rule.PAYMENT_REQUIRES_PLACED_ORDER,
    ),
    (
        "pay too little",
        PLACED,
        RecordPayment(order_id=ID, amount=1299),
        Rule.PAYMENT_MUST_EQUAL_OUTSTANDING,
    ),
    (
        "ship unpaid",
        PLACED,
        ShipOrder(order_id=ID, carrier="DHL", tracking_number="T"),
        Rule.SHIP_REQUIRES_PAID_ORDER,
    ),
    ("cancel shipped", SHIPPED, CancelOrder(order_id=ID, reason="r"), Rule.CANCEL_AFTER_SHIPPING),
    (
        "cancel twice",
        CANCELLED,
        CancelOrder(order_id=ID, reason="r"),
        Rule.ORDER_ALREADY_CANCELLED,
    ),
]
# Checked where the rule lives: in the handler (see test_order_handlers.py).
HANDLER_RULES = {Rule.IDEMPOTENCY_KEY_REUSED}


@pytest.mark.parametrize(
    ("given", "command", "rule"),
    [pytest.param(g, c, r, id=name) for name, g, c, r in VIOLATIONS],
)
def test_violation_names_the_rule_and_decides_nothing(
    given: list[Event], command: OrderCommand, rule: Rule
) -> None:
    before = fold(given)
    with pytest.raises(RuleViolation) as caught:
        when(given, command)
    assert caught.value.rule == rule
    assert caught.value.message
    assert rule in str(caught.value)
    assert fold(given) == before


def test_every_rule_has_a_violation_case() -> None:
    assert {rule for *_, rule in VIOLATIONS} | HANDLER_RULES == set(Rule)


def test_rule_names_are_stable_snake_case() -> None:
    assert all(rule.value == rule.name.lower() for rule in Rule)


@pytest.mark.parametrize("status", ["placed", "paid", "shipped", "cancelled"])
@pytest.mark.parametrize(
    "command",
    [
        add(),
        RemoveItem(order_id=ID, sku="A"),
        ChangeShippingAddress(order_id=ID, shipping_address=OTHER_ADDRESS),
        PlaceOrder(order_id=ID),
    ],
    ids=["add", "remove", "address", "place"],
)
def test_items_address_and_placing_need_a_draft(status: str, command: OrderCommand) -> None:
    with pytest.raises(RuleViolation) as caught:
        when(BY_STATUS[status], command)
    assert caught.value.rule == Rule.ORDER_NOT_DRAFT
    assert status in caught.value.message


def test_place_after_removing_every_item_is_refused() -> None:
    emptied = [*CREATED, WITH_ITEMS[1], ItemRemoved(order_id=ID, sku="A")]
    with pytest.raises(RuleViolation) as caught:
        when(emptied, PlaceOrder(order_id=ID))
    assert caught.value.rule == Rule.PLACE_REQUIRES_ITEMS


def test_payment_over_the_outstanding_amount_is_refused() -> None:
    with pytest.raises(RuleViolation) as caught:
        when(PLACED, RecordPayment(order_id=ID, amount=1301))
    assert caught.value.rule == Rule.PAYMENT_MUST_EQUAL_OUTSTANDING
    assert "1300" in caught.value.message


@pytest.mark.parametrize("status", ["draft", "paid", "shipped", "cancelled"])
def test_payment_needs_a_placed_order(status: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        when(BY_STATUS[status], RecordPayment(order_id=ID, amount=1300))
    assert caught.value.rule == Rule.PAYMENT_REQUIRES_PLACED_ORDER


@pytest.mark.parametrize("status", ["draft", "placed", "shipped", "cancelled"])
def test_shipping_needs_a_paid_order(status: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        when(BY_STATUS[status], ShipOrder(order_id=ID, carrier="DHL", tracking_number="T"))
    assert caught.value.rule == Rule.SHIP_REQUIRES_PAID_ORDER
