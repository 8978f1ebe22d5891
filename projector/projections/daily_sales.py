"""``daily_sales``: per UTC day, orders placed, revenue received and what sold per SKU.

Document shape (``_id`` = the day as ``"YYYY-MM-DD"``, the UTC date of the event's
``occurred_at``; money in integer minor units, always keyed by currency)::

    {
        "_id": "YYYY-MM-DD", "day": "YYYY-MM-DD",
        "orders_placed": int,            # OrderPlaced events that day, all currencies
        "placed_value": {currency: int}, # totals of the orders placed that day
        "payments_received": int,        # PaymentReceived events that day
        "revenue": {currency: int},      # revenue received: PaymentReceived amounts
        "skus": {key: {"sku": str, "currency": str, "units": int, "revenue": int}},
        "updated_at": datetime,
        "_position": int,
    }

``skus`` holds one entry per (currency, SKU) placed that day, from ``OrderPlaced`` lines:
units and their value at the order's prices. Its keys are opaque
(``field_key("<currency>:<sku>")``); read the entries' values. Currency keys of
``placed_value`` and ``revenue`` are the currency codes. Money in different currencies is
never added together. A date range is a range query on ``_id`` (no other index needed).
Cancellations are not subtracted: the sales of a day are what happened
that day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import conditional_update, field_key, handle, insert_defaults
from shared.document_store import WriteOp
from shared.orders_events import OrderPlaced, PaymentReceived
from shared.read_models import DAILY_SALES

DEFAULTS: dict[str, Any] = {
    "orders_placed": 0,
    "placed_value": {},
    "payments_received": 0,
    "revenue": {},
    "skus": {},
}


def day_of(envelope: EventEnvelope) -> str:
    return envelope.occurred_at.astimezone(UTC).date().isoformat()


def sku_key(currency: str, sku: str) -> str:
    return field_key(f"{currency}:{sku}")


def _day(envelope: EventEnvelope, update: Mapping[str, Mapping[str, Any]]) -> tuple[WriteOp, ...]:
    day = day_of(envelope)
    body = {
        **update,
        "$set": {**update.get("$set", {}), "day": day, "updated_at": envelope.occurred_at},
    }
    body["$setOnInsert"] = insert_defaults(DEFAULTS, body)
    return (conditional_update(day, envelope, body, upsert=True),)


def on_placed(event: OrderPlaced, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    currency = field_key(event.currency)
    increments: dict[str, int] = {"orders_placed": 1, f"placed_value.{currency}": event.total}
    names: dict[str, str] = {}
    # One entry per SKU even if a snapshot listed a SKU twice: MongoDB refuses two
    # increments of one path in an update.
    for line in event.lines:
        entry = f"skus.{sku_key(event.currency, line.sku)}"
        names[f"{entry}.sku"] = line.sku
        names[f"{entry}.currency"] = event.currency
        for field, amount in (
            ("units", line.quantity),
            ("revenue", line.quantity * line.unit_price),
        ):
            path = f"{entry}.{field}"
            increments[path] = increments.get(path, 0) + amount
    return _day(envelope, {"$inc": increments, "$set": names})


def on_payment(event: PaymentReceived, envelope: EventEnvelope) -> tuple[WriteOp, ...]:
    increments = {"payments_received": 1, f"revenue.{field_key(event.currency)}": event.amount}
    return _day(envelope, {"$inc": increments})


class DailySales(Projection):
    name = DAILY_SALES

    def __init__(self) -> None:
        super().__init__()
        handle(self, OrderPlaced, on_placed)
        handle(self, PaymentReceived, on_payment)
