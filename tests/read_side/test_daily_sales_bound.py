"""The daily sales report of a day that sold more SKUs than it lists (``MAX_SKUS_PER_DAY``), over
HTTP: the day lists the bound, says it is capped and sums the rest per currency; a day written
before the bound existed (no ``other_skus``) is answered as it always was."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from projector.projections.daily_sales import DailySales
from shared.contract.daily_sales_skus import MAX_SKUS_PER_DAY
from shared.contract.read_models import DAILY_SALES
from shared.ports.document_store import DocumentStore
from tests.projections.history import History, fold
from tests.projections.test_daily_sales_projection import orders_of, sales_of, sku_lines
from tests.read_side.documents import day_document
from tests.read_side.support import seed, set_checkpoint

CAPPED_DAY = datetime(2025, 3, 1, 9, tzinfo=UTC)
OLD_DAY = "2025-03-02"


async def test_a_capped_day_lists_the_bound_and_sums_the_rest_per_currency(
    client: httpx.AsyncClient, document_store: DocumentStore
) -> None:
    # Given a day that sold more distinct SKUs than it lists, in two currencies, as projected,
    # and the next day's document as written before the bound existed
    eur = sku_lines(0, MAX_SKUS_PER_DAY + 7)
    usd = sku_lines(50_000, 2, quantity=3, unit_price=400)
    history = History()
    events = [*orders_of(eur), *orders_of(usd, "USD")]
    [capped] = fold(DailySales(), [history.record(e, at=CAPPED_DAY) for e in events]).values()
    old = day_document(OLD_DAY)
    assert "other_skus" not in old
    await seed(document_store, DAILY_SALES, [capped, old])
    await set_checkpoint(document_store, DAILY_SALES, history.position)

    # When the report of both days is asked for
    response = await client.get(
        "/reports/daily-sales", params={"from": CAPPED_DAY.date().isoformat(), "to": OLD_DAY}
    )

    # Then the capped day says so, lists the first SKUs sold and sums the rest per currency
    assert response.status_code == 200, response.text
    day, old_day = response.json()["days"]
    other = {"EUR": sales_of(eur[MAX_SKUS_PER_DAY:]), "USD": sales_of(usd)}
    assert (day["skus_capped"], day["other_skus"]) == (True, other)
    assert [s["sku"] for s in day["skus"]] == [line.sku for line in eur[:MAX_SKUS_PER_DAY]]
    assert day["placed_value"] == {
        "EUR": sales_of(eur)["revenue"],
        "USD": sales_of(usd)["revenue"],
    }
    # and the day written before the bound is complete, as it always was
    assert (old_day["skus_capped"], old_day["other_skus"]) == (False, {})
    assert len(old_day["skus"]) == len(old["skus"])
    # and the totals add both up.
    totals = response.json()["totals"]
    assert (totals["skus_capped"], totals["other_skus"]) == (True, other)
    assert len(totals["skus"]) == MAX_SKUS_PER_DAY + len(old["skus"])


async def test_the_openapi_document_states_the_bound(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    figures = schemas["SalesFigures"]["properties"]
    assert str(MAX_SKUS_PER_DAY) in figures["skus"]["description"]
    assert str(MAX_SKUS_PER_DAY) in figures["other_skus"]["description"]
    assert figures["other_skus"]["additionalProperties"]["$ref"].endswith("/OtherSkus")
    assert figures["skus_capped"]["type"] == "boolean"
    assert set(schemas["OtherSkus"]["properties"]) == {"units", "revenue"}
