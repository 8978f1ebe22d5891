"""The orders rules' stable names (the limits some of them enforce are in ``limits``).

Each rule has a snake_case name that clients may match on (the API puts it in the problem
details); renaming one is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    ORDER_ALREADY_EXISTS = "order_already_exists"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    CUSTOMER_ID_REQUIRED = "customer_id_required"
    UNKNOWN_CURRENCY = "unknown_currency"
    ORDER_NOT_DRAFT = "order_not_draft"
    SKU_REQUIRED = "sku_required"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    UNIT_PRICE_OUT_OF_RANGE = "unit_price_out_of_range"
    UNIT_PRICE_MISMATCH = "unit_price_mismatch"
    LINE_QUANTITY_EXCEEDS_MAX = "line_quantity_exceeds_max"
    TOO_MANY_LINES = "too_many_lines"
    SKU_NOT_IN_ORDER = "sku_not_in_order"
    PLACE_REQUIRES_ITEMS = "place_requires_items"
    PAYMENT_REQUIRES_PLACED_ORDER = "payment_requires_placed_order"
    PAYMENT_MUST_EQUAL_OUTSTANDING = "payment_must_equal_outstanding"
    SHIP_REQUIRES_PAID_ORDER = "ship_requires_paid_order"
    CANCEL_AFTER_SHIPPING = "cancel_after_shipping"
    ORDER_ALREADY_CANCELLED = "order_already_cancelled"
