"""How big an order and its parts may be: each limit defined here once.

The domain rules enforce these; the commands and the HTTP request models take their bounds from
here, so the OpenAPI document shows the same numbers. Where a request model already holds a
value to a bound, a client breaking it gets 422 (validation) before the rule could answer 409;
the rules still check, because commands can be built without HTTP and events must never carry
an out-of-range value.

The caps are chosen together so that every order the API accepts can be placed, paid in full
and shipped: the largest payment accepted is the largest total an order can reach.
"""

from __future__ import annotations

# --- lines and quantities ---

# Different SKUs on one order.
MAX_LINES = 100
# Items one CreateOrder may list: as many as an order has lines (a SKU listed twice merges).
MAX_ITEMS_ON_CREATE = MAX_LINES
# Units of one SKU: per request, and on the order's line after merging.
MIN_QUANTITY = 1
MAX_QUANTITY = 1000

# --- money (integer minor units of the order's currency) ---

# Zero is a price: free items exist, and an order of them is paid with 0.
MIN_UNIT_PRICE = 0
MAX_UNIT_PRICE = 10**12
# The largest total an order can reach: 100 lines x 1000 units x 10^12 = 10^17, inside a
# signed 64-bit integer (MongoDB, most JSON consumers) with room to spare.
MAX_ORDER_TOTAL = MAX_LINES * MAX_QUANTITY * MAX_UNIT_PRICE
# A payment is exactly the outstanding amount, so the largest total must be payable.
MIN_PAYMENT = 0
MAX_PAYMENT = MAX_ORDER_TOTAL

# --- text (characters) ---

MAX_SKU_LENGTH = 64
MAX_CUSTOMER_ID_LENGTH = 100
MAX_CARRIER_LENGTH = 100
MAX_TRACKING_NUMBER_LENGTH = 64
MAX_CANCEL_REASON_LENGTH = 200
MAX_ADDRESS_LINE_LENGTH = 200
MAX_CITY_LENGTH = 100
MAX_POSTAL_CODE_LENGTH = 20
