"""Response models of the read side, validated straight from the projections' documents.

The shapes follow the projections' documents (``projector/projections/*``): money is integer
minor units, amounts in different currencies are kept apart (maps keyed by currency code), and
datetimes are UTC. A sum a projection kept across orders (per-currency money, SKU figures,
status counts) is stored as an int or, beyond int64, as its exact decimal string
(``shared/contract/read_model_sums.py``); ``sum_of`` reads either back as the exact int, so the
answers are integers (JSON numbers) whatever their size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, get_args
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from read_side.pagination import as_utc
from shared.contract.daily_sales_skus import MAX_SKUS_PER_DAY
from shared.contract.order_events import OrderStatus
from shared.contract.read_model_sums import sum_of

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
MinorUnits = Annotated[int, Field(description="integer minor units of the currency")]
PerCurrency = Annotated[
    dict[str, int],
    Field(description="integer minor units keyed by ISO 4217 currency code"),
]
STATUSES: tuple[str, ...] = get_args(OrderStatus)
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


@dataclass(frozen=True, slots=True)
class Answer[V]:
    """A handler's response, the read model position it reflects, and whether that position
    missed the query's consistency token."""

    value: V
    position: int
    stale: bool


def unescape_key(key: str) -> str:
    """The text behind a map key the projector percent-encoded (``"a%2Eb"`` -> ``"a.b"``)."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), key)


def _per_currency(raw: Mapping[str, Any] | None) -> dict[str, int]:
    return {unescape_key(key): sum_of(value) for key, value in (raw or {}).items()}


class _View(BaseModel):
    # Documents carry storage fields (_id, _position, updated_at, ...) no response shows.
    model_config = ConfigDict(frozen=True, extra="ignore")


class AddressView(_View):
    line1: str
    line2: str = ""
    city: str
    postal_code: str
    country: str


class OrderLineView(_View):
    sku: str
    quantity: int
    unit_price: MinorUnits
    line_total: MinorUnits


class OrderView(_View):
    """Everything a client shows about one order."""

    order_id: UUID
    customer_id: str
    currency: str = Field(examples=["EUR"])
    status: OrderStatus
    items: list[OrderLineView] = Field(description="in the order SKUs were first added")
    total: MinorUnits
    amount_paid: MinorUnits
    outstanding: MinorUnits = Field(description="total - amount_paid; 0 once cancelled")
    refund_due: MinorUnits = Field(0, description="what was paid before a cancellation")
    shipping_address: AddressView
    carrier: str | None = None
    tracking_number: str | None = None
    cancel_reason: str | None = None
    cancelled_from: OrderStatus | None = None
    version: int = Field(description="stream revision of the order's last event (its ETag)")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    placed_at: UtcDatetime | None = None
    paid_at: UtcDatetime | None = None
    shipped_at: UtcDatetime | None = None
    cancelled_at: UtcDatetime | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> OrderView:
        return cls.model_validate({"order_id": document["_id"], **document})


class OrderPage(_View):
    """One page of a customer's orders, newest first."""

    items: list[OrderView]
    next_cursor: str | None = Field(
        description="pass as ?cursor= to get the next page; null on the last page"
    )


class CustomerSummaryView(_View):
    """A customer's orders by status and what they paid. A customer with no orders has an
    all-zero summary (the read side knows customers only through their orders)."""

    customer_id: str
    orders_by_status: dict[OrderStatus, int] = Field(description="every status, 0 when none")
    order_count: int = Field(description="orders ever created")
    open_orders: int = Field(description="orders draft, placed or paid")
    lifetime_paid: PerCurrency = Field(description="payments received (refunds not subtracted)")
    last_order_at: UtcDatetime | None = Field(description="creation time of the newest order")

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> CustomerSummaryView:
        counts = document.get("orders_by_status") or {}
        return cls.model_validate(
            {
                **document,
                "customer_id": document["_id"],
                "orders_by_status": {s: sum_of(counts.get(s, 0)) for s in STATUSES},
                "order_count": int(document.get("order_count", 0)),
                "open_orders": int(document.get("open_orders", 0)),
                "lifetime_paid": _per_currency(document.get("lifetime_paid")),
                "last_order_at": document.get("last_order_at"),
            }
        )

    @classmethod
    def empty(cls, customer_id: str) -> CustomerSummaryView:
        return cls.from_document({"_id": customer_id})


class SkuSales(_View):
    sku: str
    currency: str
    units: int
    revenue: MinorUnits = Field(description="value of the units at the orders' prices")


class OtherSkus(_View):
    units: int
    revenue: MinorUnits = Field(description="value of the units at the orders' prices")


class SalesFigures(_View):
    """A day's figures, or a range's totals. A day lists the first SKUs it sold, up to a bound;
    what it sold of further SKUs is summed in other_skus, so per currency the SKUs listed plus
    other_skus are everything placed."""

    # The bound is MAX_SKUS_PER_DAY (shared/contract/daily_sales_skus.py): it keeps a day's
    # document far below MongoDB's 16 MiB and a day's answer as small.
    orders_placed: int = 0
    placed_value: PerCurrency = Field(default_factory=dict)
    payments_received: int = 0
    revenue: PerCurrency = Field(
        default_factory=dict, description="revenue received: payments, per currency"
    )
    skus: list[SkuSales] = Field(
        default_factory=list,
        description="units and value per (currency, SKU) of orders placed; a day lists at most "
        f"{MAX_SKUS_PER_DAY} (the first sold that day), the rest is in other_skus",
    )
    other_skus: dict[str, OtherSkus] = Field(
        default_factory=dict,
        description="per ISO 4217 currency code, units and value of the SKUs a day sold beyond "
        f"the {MAX_SKUS_PER_DAY} it lists; empty when every SKU is listed",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="true when skus is not the whole list: other_skus holds the SKUs not listed"
    )
    @property
    def skus_capped(self) -> bool:
        return bool(self.other_skus)


class DaySales(SalesFigures):
    day: date = Field(description="UTC day")


class DailySalesReport(_View):
    """Sales per UTC day, every day of the range (days without sales are zeros), and totals."""

    from_day: date
    to_day: date
    days: list[DaySales]
    totals: SalesFigures

    @classmethod
    def from_documents(
        cls, from_day: date, to_day: date, documents: Iterable[Mapping[str, Any]]
    ) -> DailySalesReport:
        found = {str(d["_id"]): _figures(d) for d in documents}
        days = []
        for offset in range((to_day - from_day).days + 1):
            day = from_day + timedelta(days=offset)
            figures = found.get(day.isoformat(), SalesFigures())
            days.append(DaySales(day=day, **dict(figures)))
        return cls(from_day=from_day, to_day=to_day, days=days, totals=_total(days))


def _figures(document: Mapping[str, Any]) -> SalesFigures:
    skus = [_sku_sales(entry) for entry in (document.get("skus") or {}).values()]
    # Documents of days that never passed the bound have no other_skus.
    other = document.get("other_skus") or {}
    return SalesFigures(
        orders_placed=int(document.get("orders_placed", 0)),
        placed_value=_per_currency(document.get("placed_value")),
        payments_received=int(document.get("payments_received", 0)),
        revenue=_per_currency(document.get("revenue")),
        skus=sorted(skus, key=lambda s: (s.currency, s.sku)),
        other_skus={
            unescape_key(currency): OtherSkus(
                units=sum_of(sums["units"]), revenue=sum_of(sums["revenue"])
            )
            for currency, sums in sorted(other.items())
        },
    )


def _sku_sales(entry: Mapping[str, Any]) -> SkuSales:
    return SkuSales(
        sku=entry["sku"],
        currency=entry["currency"],
        units=sum_of(entry["units"]),
        revenue=sum_of(entry["revenue"]),
    )


def _total(days: Iterable[SalesFigures]) -> SalesFigures:
    orders = payments = 0
    placed: dict[str, int] = {}
    revenue: dict[str, int] = {}
    skus: dict[tuple[str, str], tuple[int, int]] = {}
    other: dict[str, tuple[int, int]] = {}
    for day in days:
        orders += day.orders_placed
        payments += day.payments_received
        for currency, amount in day.placed_value.items():
            placed[currency] = placed.get(currency, 0) + amount
        for currency, amount in day.revenue.items():
            revenue[currency] = revenue.get(currency, 0) + amount
        for sku in day.skus:
            units, value = skus.get((sku.currency, sku.sku), (0, 0))
            skus[sku.currency, sku.sku] = (units + sku.units, value + sku.revenue)
        for currency, sums in day.other_skus.items():
            units, value = other.get(currency, (0, 0))
            other[currency] = (units + sums.units, value + sums.revenue)
    return SalesFigures(
        orders_placed=orders,
        placed_value=placed,
        payments_received=payments,
        revenue=revenue,
        skus=[
            SkuSales(sku=sku, currency=currency, units=units, revenue=value)
            for (currency, sku), (units, value) in sorted(skus.items())
        ],
        other_skus={
            currency: OtherSkus(units=units, revenue=value)
            for currency, (units, value) in sorted(other.items())
        },
    )
