"""Sums beyond int64 over HTTP: the projections fold days and a customer of maximal orders
(sums past 2^63-1, stored as exact decimal strings), the documents are written to the embedded
MongoDB through the ``DocumentStore`` port, and the query API answers the exact integers as
JSON numbers (the report's totals add such days up)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx

from projector.projection import EventEnvelope, Projection
from projector.projections.customer_summaries import CustomerSummaries
from projector.projections.daily_sales import DailySales
from shared.contract.order_events import OrderCreated
from shared.contract.read_model_sums import INT64_MAX
from shared.ports.document_store import DocumentStore
from tests.conftest import unique
from tests.projections.history import HOME, History, fold
from tests.projections.maximal import BEYOND_INT64, maximal_order, maximal_payment
from tests.read_side.support import seed, set_checkpoint
from write_side.domain.limits import MAX_ORDER_TOTAL, MAX_PAYMENT

FIRST_DAY = datetime(2025, 3, 1, 9, tzinfo=UTC)
DAYS = 2


def maximal_days(customer: str) -> list[EventEnvelope]:
    """``BEYOND_INT64`` maximal orders of ``customer`` created, placed and paid on each of
    ``DAYS``."""
    history = History()
    for offset in range(DAYS):
        at = FIRST_DAY + timedelta(days=offset)
        for _ in range(BEYOND_INT64):
            order = uuid4()
            created = OrderCreated(
                order_id=order, customer_id=customer, currency="EUR", shipping_address=HOME
            )
            history.record(created, at=at)
            history.record(maximal_order(order, customer), at=at)
            history.record(maximal_payment(order, customer), at=at)
    return history.envelopes


async def project(
    store: DocumentStore, projection: Projection, envelopes: list[EventEnvelope]
) -> None:
    """What the projector would write for ``envelopes``, written through the port."""
    await seed(store, projection.name, list(fold(projection, envelopes).values()))
    await set_checkpoint(store, projection.name, envelopes[-1].position)


async def test_the_daily_sales_report_answers_sums_beyond_int64_exactly(
    client: httpx.AsyncClient, document_store: DocumentStore
) -> None:
    await project(document_store, DailySales(), maximal_days(unique("c")))
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)

    response = await client.get(
        "/reports/daily-sales",
        params={"from": FIRST_DAY.date().isoformat(), "to": last_day.date().isoformat()},
    )

    assert response.status_code == 200, response.text
    body = json.loads(response.text)  # an int beyond int64 stays exact in Python's json
    day_placed, day_revenue = BEYOND_INT64 * MAX_ORDER_TOTAL, BEYOND_INT64 * MAX_PAYMENT
    assert day_revenue > INT64_MAX
    assert [(d["placed_value"], d["revenue"]) for d in body["days"]] == [
        ({"EUR": day_placed}, {"EUR": day_revenue})
    ] * DAYS
    assert body["totals"]["placed_value"] == {"EUR": DAYS * day_placed}
    assert body["totals"]["revenue"] == {"EUR": DAYS * day_revenue}
    assert f'"revenue":{{"EUR":{DAYS * day_revenue}}}' in response.text, "a JSON number"


async def test_the_customer_summary_answers_lifetime_paid_beyond_int64_exactly(
    client: httpx.AsyncClient, document_store: DocumentStore
) -> None:
    customer = unique("c")
    await project(document_store, CustomerSummaries(), maximal_days(customer))

    response = await client.get(f"/customers/{customer}/summary")

    assert response.status_code == 200, response.text
    paid = DAYS * BEYOND_INT64 * MAX_PAYMENT
    body = json.loads(response.text)
    assert body["lifetime_paid"] == {"EUR": paid}
    assert body["orders_by_status"]["paid"] == body["order_count"] == DAYS * BEYOND_INT64
    assert f'"lifetime_paid":{{"EUR":{paid}}}' in response.text, "a JSON number"
