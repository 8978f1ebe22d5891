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
        "other_skus": {currency: {"units": sum, "revenue": sum}},  # only once the day is capped
        "updated_at": datetime,
        "_position": int,
    }

``skus`` holds one entry per (currency, SKU) placed that day, from ``OrderPlaced`` lines:
units and their value at the order's prices, for at most ``MAX_SKUS_PER_DAY`` (1,000)
entries (``shared/contract/daily_sales_skus.py`` says why and computes the worst-case document:
about 0.66 MiB, far below MongoDB's 16 MiB). Once a day lists that many, the lines of a SKU new
to that day are added to ``other_skus`` under their currency instead; SKUs already listed keep
being counted. ``other_skus`` exists only on a day that spilled a line there, so every day below
the bound (every document written before the bound existed, which could not pass it) looks as
it always did, and a reader takes a missing ``other_skus`` as none. ``placed_value`` and
``revenue`` do not depend on the bound: the sales of a day are the listed SKUs plus
``other_skus``, per currency.

Keys of ``skus`` are opaque (``field_key("<currency>:<sku>")``); read the entries' values.
Currency keys of ``placed_value``, ``revenue`` and ``other_skus`` are the currency codes
(``field_key`` of them). Money in different currencies is never added together. A date range
is a range query on ``_id`` (no other index needed). Cancellations are not subtracted: the sales
of a day are what happened that day.

A ``sum`` is added with ``operations.added`` and stored by the read-model rule
(``shared/contract/read_model_sums.py``): an int while it fits int64, its exact decimal string
beyond. An order may total 10^17, so 93 maximal orders in one day pass 2^63-1;
as ints such a day could not be stored and the projection would stall for everyone. Units
(at most 1000 per line) are kept the same way, so every figure in ``skus`` and ``other_skus``
reads alike. The event counts grow by one per event and stay ints.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from projector.projection import EventEnvelope, Projection
from projector.projections.operations import added, field_key, handle
from shared.contract.daily_sales_skus import MAX_SKUS_PER_DAY
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
    other = dict(current.get("other_skus", {}))
    currency = field_key(event.currency)
    for line in event.lines:
        key = sku_key(event.currency, line.sku)
        value = line.quantity * line.unit_price
        if key in skus or len(skus) < MAX_SKUS_PER_DAY:
            entry = {**skus.get(key, {}), "sku": line.sku, "currency": event.currency}
            skus[key] = added(added(entry, "units", line.quantity), "revenue", value)
        else:
            bucket = added(other.get(currency, {}), "units", line.quantity)
            other[currency] = added(bucket, "revenue", value)
    spilled = {"other_skus": other} if other else {}
    return _day(
        document,
        envelope,
        orders_placed=current.get("orders_placed", 0) + 1,
        placed_value=added(current.get("placed_value", {}), currency, event.total),
        skus=skus,
        **spilled,
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
