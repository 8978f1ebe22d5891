"""A small shop day and the read-model documents it must produce.

Five orders of two customers in two currencies over two UTC days: one shipped, one cancelled
after payment, one cancelled as a draft, one placed and one still a draft. SKUs include
characters that MongoDB field names and aggregation expressions treat specially.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

from shared.contract.order_events import (
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    ShippingAddressChanged,
)
from tests.projections.history import HOME, WORK, History

DAY1 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
# 01:30 on 2 March in UTC+2 is 23:30 on 1 March in UTC: the sale belongs to day 1.
LATE_DAY1_LOCAL = datetime(2025, 3, 2, 1, 30, tzinfo=timezone(timedelta(hours=2)))
ODD_SKU = "$a.b"


@dataclass
class Scenario:
    history: History
    a: UUID
    b: UUID
    c: UUID
    d: UUID
    e: UUID

    def at(self, index: int) -> datetime:
        """When the ``index``-th event (1-based, as numbered in ``scenario``) happened."""
        return self.history.envelopes[index - 1].occurred_at

    def position(self, index: int) -> int:
        return self.history.envelopes[index - 1].position


def scenario() -> Scenario:
    a, b, c, d, e = (uuid4() for _ in range(5))
    h = History(clock=DAY1)
    h.record(OrderCreated(order_id=a, customer_id="cust-1", currency="EUR", shipping_address=HOME))
    h.record(ItemAdded(order_id=a, sku=ODD_SKU, quantity=2, unit_price=500))
    h.record(OrderCreated(order_id=b, customer_id="cust-1", currency="USD", shipping_address=WORK))
    h.record(ItemAdded(order_id=a, sku="plain", quantity=1, unit_price=1000))
    h.record(ItemAdded(order_id=b, sku="plain", quantity=2, unit_price=700))  # 5
    h.record(ItemAdded(order_id=a, sku=ODD_SKU, quantity=1, unit_price=500))
    h.record(ItemAdded(order_id=a, sku="gone", quantity=1, unit_price=1))
    h.record(ItemRemoved(order_id=a, sku="gone"))
    h.record(ShippingAddressChanged(order_id=a, shipping_address=WORK))
    h.record(OrderCreated(order_id=c, customer_id="cust-2", currency="EUR", shipping_address=HOME))
    h.record(ItemAdded(order_id=c, sku="x", quantity=1, unit_price=100))
    a_lines = (
        OrderLine(sku=ODD_SKU, quantity=3, unit_price=500),
        OrderLine(sku="plain", quantity=1, unit_price=1000),
    )
    h.record(
        OrderPlaced(order_id=a, customer_id="cust-1", currency="EUR", lines=a_lines, total=2500),
        at=LATE_DAY1_LOCAL,
    )  # 12
    h.record(
        OrderCancelled(
            order_id=c,
            customer_id="cust-2",
            reason="duplicate",
            previous_status="draft",
            refund_due=0,
        )
    )
    h.record(
        OrderCreated(order_id=d, customer_id="cust-2", currency="EUR", shipping_address=HOME),
        at=DAY2,
    )
    h.record(ItemAdded(order_id=d, sku="plain", quantity=5, unit_price=1000))  # 15
    h.record(PaymentReceived(order_id=a, customer_id="cust-1", currency="EUR", amount=2500))
    b_lines = (OrderLine(sku="plain", quantity=2, unit_price=700),)
    h.record(
        OrderPlaced(order_id=b, customer_id="cust-1", currency="USD", lines=b_lines, total=1400)
    )
    d_lines = (OrderLine(sku="plain", quantity=5, unit_price=1000),)
    h.record(
        OrderPlaced(order_id=d, customer_id="cust-2", currency="EUR", lines=d_lines, total=5000)
    )
    h.record(PaymentReceived(order_id=b, customer_id="cust-1", currency="USD", amount=1400))
    h.record(
        OrderShipped(order_id=a, customer_id="cust-1", carrier="DHL", tracking_number="JD0146")
    )  # 20
    h.record(
        OrderCancelled(
            order_id=b,
            customer_id="cust-1",
            reason="customer request",
            previous_status="paid",
            refund_due=1400,
        )
    )
    h.record(OrderCreated(order_id=e, customer_id="cust-2", currency="EUR", shipping_address=HOME))
    h.record(ItemAdded(order_id=e, sku=ODD_SKU, quantity=1, unit_price=10))
    h.record(ItemAdded(order_id=e, sku="y", quantity=2, unit_price=20))
    h.record(ItemAdded(order_id=e, sku=ODD_SKU, quantity=2, unit_price=10))  # 25
    return Scenario(h, a, b, c, d, e)


def _order(order_id: UUID, **fields: Any) -> dict[str, Any]:
    blank = {
        "_id": str(order_id),
        "order_id": str(order_id),
        "amount_paid": 0,
        "refund_due": 0,
        "carrier": None,
        "tracking_number": None,
        "cancel_reason": None,
        "cancelled_from": None,
        "placed_at": None,
        "paid_at": None,
        "shipped_at": None,
        "cancelled_at": None,
    }
    return blank | fields


def _line(sku: str, quantity: int, unit_price: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "quantity": quantity,
        "unit_price": unit_price,
        "line_total": quantity * unit_price,
    }


def expected_order_views(s: Scenario) -> list[dict[str, Any]]:
    cust1 = {"customer_id": "cust-1"}
    cust2 = {"customer_id": "cust-2", "currency": "EUR", "shipping_address": HOME.model_dump()}
    views = [
        _order(
            s.a,
            **cust1,
            currency="EUR",
            status="shipped",
            items=[_line(ODD_SKU, 3, 500), _line("plain", 1, 1000)],
            total=2500,
            amount_paid=2500,
            outstanding=0,
            shipping_address=WORK.model_dump(),
            carrier="DHL",
            tracking_number="JD0146",
            version=9,
            created_at=s.at(1),
            placed_at=s.at(12),
            paid_at=s.at(16),
            shipped_at=s.at(20),
            updated_at=s.at(20),
            _position=s.position(20),
        ),
        _order(
            s.b,
            **cust1,
            currency="USD",
            status="cancelled",
            items=[_line("plain", 2, 700)],
            total=1400,
            amount_paid=1400,
            outstanding=0,
            refund_due=1400,
            shipping_address=WORK.model_dump(),
            cancel_reason="customer request",
            cancelled_from="paid",
            version=4,
            created_at=s.at(3),
            placed_at=s.at(17),
            paid_at=s.at(19),
            cancelled_at=s.at(21),
            updated_at=s.at(21),
            _position=s.position(21),
        ),
        _order(
            s.c,
            **cust2,
            status="cancelled",
            items=[_line("x", 1, 100)],
            total=100,
            outstanding=0,
            cancel_reason="duplicate",
            cancelled_from="draft",
            version=2,
            created_at=s.at(10),
            cancelled_at=s.at(13),
            updated_at=s.at(13),
            _position=s.position(13),
        ),
        _order(
            s.d,
            **cust2,
            status="placed",
            items=[_line("plain", 5, 1000)],
            total=5000,
            outstanding=5000,
            version=2,
            created_at=s.at(14),
            placed_at=s.at(18),
            updated_at=s.at(18),
            _position=s.position(18),
        ),
        _order(
            s.e,
            **cust2,
            status="draft",
            items=[_line(ODD_SKU, 3, 10), _line("y", 2, 20)],
            total=70,
            outstanding=70,
            version=3,
            created_at=s.at(22),
            updated_at=s.at(25),
            _position=s.position(25),
        ),
    ]
    return sorted(views, key=lambda view: view["_id"])


def expected_customer_summaries(s: Scenario) -> list[dict[str, Any]]:
    return [
        {
            "_id": "cust-1",
            "customer_id": "cust-1",
            "orders_by_status": {"draft": 0, "placed": 0, "paid": 0, "shipped": 1, "cancelled": 1},
            "order_count": 2,
            "open_orders": 0,
            "lifetime_paid": {"EUR": 2500, "USD": 1400},
            "last_order_at": s.at(3),
            "updated_at": s.at(21),
            "_position": s.position(21),
        },
        {
            "_id": "cust-2",
            "customer_id": "cust-2",
            "orders_by_status": {"draft": 1, "placed": 1, "paid": 0, "shipped": 0, "cancelled": 1},
            "order_count": 3,
            "open_orders": 2,
            "lifetime_paid": {},
            "last_order_at": s.at(22),
            "updated_at": s.at(22),
            "_position": s.position(22),
        },
    ]


def _sku(sku: str, currency: str, units: int, revenue: int) -> dict[str, Any]:
    return {"sku": sku, "currency": currency, "units": units, "revenue": revenue}


def expected_daily_sales(s: Scenario) -> list[dict[str, Any]]:
    return [
        {
            "_id": "2025-03-01",
            "day": "2025-03-01",
            "orders_placed": 1,
            "placed_value": {"EUR": 2500},
            "payments_received": 0,
            "revenue": {},
            "skus": {
                "EUR:%24a%2Eb": _sku(ODD_SKU, "EUR", 3, 1500),
                "EUR:plain": _sku("plain", "EUR", 1, 1000),
            },
            "updated_at": s.at(12),
            "_position": s.position(12),
        },
        {
            "_id": "2025-03-02",
            "day": "2025-03-02",
            "orders_placed": 2,
            "placed_value": {"USD": 1400, "EUR": 5000},
            "payments_received": 2,
            "revenue": {"EUR": 2500, "USD": 1400},
            "skus": {
                "USD:plain": _sku("plain", "USD", 2, 1400),
                "EUR:plain": _sku("plain", "EUR", 5, 5000),
            },
            "updated_at": s.at(19),
            "_position": s.position(19),
        },
    ]
