"""The largest orders and payments the write side accepts (``write_side/domain/limits.py``),
and how many of them add up beyond what MongoDB stores as an integer (int64)."""

from __future__ import annotations

from uuid import UUID

from shared.contract.order_events import OrderLine, OrderPlaced, PaymentReceived
from shared.contract.read_model_sums import INT64_MAX
from write_side.domain.limits import (
    MAX_LINES,
    MAX_ORDER_TOTAL,
    MAX_PAYMENT,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
)

# Every line of a maximal order: the most units of a SKU at the highest price.
LINE_VALUE = MAX_QUANTITY * MAX_UNIT_PRICE
LINES = tuple(
    OrderLine(sku=f"SKU-{n:03}", quantity=MAX_QUANTITY, unit_price=MAX_UNIT_PRICE)
    for n in range(MAX_LINES)
)
# The fewest maximal orders (or payments) whose sum no longer fits int64.
BEYOND_INT64 = INT64_MAX // MAX_ORDER_TOTAL + 1

assert sum(line.quantity * line.unit_price for line in LINES) == MAX_ORDER_TOTAL
assert (BEYOND_INT64 - 1) * MAX_ORDER_TOTAL <= INT64_MAX < BEYOND_INT64 * MAX_ORDER_TOTAL


def maximal_order(order_id: UUID, customer_id: str, currency: str = "EUR") -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        currency=currency,
        lines=LINES,
        total=MAX_ORDER_TOTAL,
    )


def maximal_payment(order_id: UUID, customer_id: str, currency: str = "EUR") -> PaymentReceived:
    return PaymentReceived(
        order_id=order_id, customer_id=customer_id, currency=currency, amount=MAX_PAYMENT
    )
