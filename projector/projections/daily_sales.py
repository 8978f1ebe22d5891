"""``daily_sales``: per UTC day, orders placed, revenue received and what sold per SKU.

Document shape (``_id`` = the day as ``"YYYY-MM-DD"``, the UTC date of the event's
``occurred_at``; money in integer minor units, always keyed by currency)::

    {
        "_id": "YYYY-MM-DD", "day": "YYYY-MM-DD",
        "orders_placed": int,            # OrderPlaced events that day, all currencies
        "placed_value": {currency: sum}, # totals of the orders placed that day
        "payments_received": int,        # PaymentReceived events that day
        "revenue": {currency: sum},      # revenue received: PaymentReceived amounts
        "skus": {key: {"sku": str, "currency": str, "units": sum, "revenue": sum}},
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

A ``sum`` is added with ``operations.added`` and stored by the read-model rule
(``shared/contract/read_model_sums.py``): an int while it fits int64, its exact decimal string
beyond. An order may total 10^17, so 93 maximal orders in one day pass 2^63-1;
as ints such a day could not be stored and the projection would stall for everyone. Units
(at most 1000 per line) are kept the same way, so every figure in ``skus`` reads alike. The
event counts grow by one per event and stay ints.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import added, field_key, handle
from shared.contract.order_events import OrderPlaced, PaymentReceived
from shared.contract.read_models import DAILY_SALES
from shared.ports.document_store import Document


def day_of(envelope: EventEnvelope) -> str:
    return envelope.occurred_at.astimezone(UTC).date().isoformat()


def sku_key(currency: str, sku: str) -> str:
    return field_key(f"{currency}:{sku}")


def _day(document: Document | None, envelope: EventEnvelope, **fields: Any) -> Document:
    day = day_of(envelope)
    blank: Document = {
        "_id": day,
        "orders_placed": 0,
        "placed_value": {},
        "payments_received": 0,
        "revenue": {},
        "skus": {},
    }
    return {
        **(document if document is not None else blank),
        **fields,
        "day": day,
        "updated_at": envelope.occurred_at,
    }


def on_placed(event: OrderPlaced, document: Document | None, envelope: EventEnvelope) -> Document:
    current = document or {}
    skus = dict(current.get("skus", {}))
    for line in event.lines:
        key = sku_key(event.currency, line.sku)
        entry = {**skus.get(key, {}), "sku": line.sku, "currency": event.currency}
        entry = added(entry, "units", line.quantity)
        skus[key] = added(entry, "revenue", line.quantity * line.unit_price)
    return _day(
        document,
        envelope,
        orders_placed=current.get("orders_placed", 0) + 1,
        placed_value=added(current.get("placed_value", {}), field_key(event.currency), event.total),
        skus=skus,
    )


def on_payment(
    event: PaymentReceived, document: Document | None, envelope: EventEnvelope
) -> Document:
    current = document or {}
    return _day(
        document,
        envelope,
        payments_received=current.get("payments_received", 0) + 1,
        revenue=added(current.get("revenue", {}), field_key(event.currency), event.amount),
    )


class DailySales(Projection):
    name = DAILY_SALES

    def __init__(self) -> None:
        super().__init__()
        handle(self, OrderPlaced, on_placed)
        handle(self, PaymentReceived, on_payment)

    def document_id(self, envelope: EventEnvelope) -> str | None:
        return day_of(envelope)
