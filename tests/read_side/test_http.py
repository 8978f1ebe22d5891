"""The query API over HTTP: a minimal FastAPI app with the read side's router and the shared
problem handlers, on the embedded MongoDB (httpx over ASGI, no server)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from read_side.bootstrap import build_query_bus
from read_side.http import router
from shared.contract.read_models import CUSTOMER_SUMMARIES, DAILY_SALES, ORDER_VIEWS
from shared.ports.document_store import DocumentStore
from shared.web.problem_details import PROBLEM_JSON, install_problem_handlers
from tests.conftest import unique
from tests.read_side.documents import day_document, order_document, summary_document
from tests.read_side.support import WAIT_S, ObservedWatcher, seed, set_checkpoint

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def assert_problem(response: httpx.Response, status: int, title: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert (body["status"], body["title"]) == (status, title)
    return body  # type: ignore[no-any-return]


# --- orders ---------------------------------------------------------------------------------


async def test_get_order(client: httpx.AsyncClient, document_store: DocumentStore) -> None:
    document = order_document(customer_id=unique("c"), created_at=START, status="paid")
    await seed(document_store, ORDER_VIEWS, [document])
    await set_checkpoint(document_store, ORDER_VIEWS, 12)

    response = await client.get(f"/orders/{document['_id']}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order_id"] == document["_id"]
    assert (body["status"], body["total"], body["amount_paid"], body["outstanding"]) == (
        "paid",
        2500,
        2500,
        0,
    )
    assert body["created_at"].startswith("2025-03-01T08:00:00")
    assert "_position" not in body and "_id" not in body
    assert response.headers["X-Read-Model-Position"] == "12"
    assert "X-Read-Model-Stale" not in response.headers  # no token, no verdict


async def test_an_unknown_order_is_a_404_problem(client: httpx.AsyncClient) -> None:
    order_id = uuid.uuid4()
    response = await client.get(f"/orders/{order_id}")
    body = assert_problem(response, 404, "Order not found")
    assert str(order_id) in str(body["detail"])
    # Names the request by its correlation id (none in this app), never by its path.
    assert str(order_id) not in str(body.get("instance"))
    assert response.headers["X-Read-Model-Position"] == "0"


async def test_an_order_id_that_is_not_a_uuid_is_a_422_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/orders/not-a-uuid"), 422, "Validation failed")


# --- read your writes -----------------------------------------------------------------------


async def test_a_read_with_a_token_waits_for_the_projection_then_sees_the_write(
    client: httpx.AsyncClient, document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 100)
    # Below the token: only the checkpoint can release this read (a document that has applied
    # the token releases it by itself, see test_document_consistency.py).
    document = order_document(customer_id=unique("c"), created_at=START, position=140)
    request = asyncio.create_task(
        client.get(
            f"/orders/{document['_id']}",
            headers={"X-Consistency-Token": "150"},
            params={"wait_ms": 10_000},
        )
    )
    await watcher.until(lambda: watcher.waiting == 1)

    # The projector applies the write, then saves a checkpoint past it (a filter checkpoint).
    await seed(document_store, ORDER_VIEWS, [document])
    await set_checkpoint(document_store, ORDER_VIEWS, 163)
    async with asyncio.timeout(WAIT_S):
        response = await request

    assert response.status_code == 200, response.text
    assert response.json()["order_id"] == document["_id"]
    assert response.headers["X-Read-Model-Stale"] == "false"
    assert response.headers["X-Read-Model-Position"] == "163"


async def test_the_token_of_a_summary_waits_for_customer_summaries_only(
    client: httpx.AsyncClient, document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    customer = unique("c")
    await set_checkpoint(document_store, ORDER_VIEWS, 500)  # another projection is ahead
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 10)
    request = asyncio.create_task(
        client.get(f"/customers/{customer}/summary", headers={"X-Consistency-Token": "200"})
    )
    await watcher.until(lambda: watcher.waiting == 1)
    await seed(document_store, CUSTOMER_SUMMARIES, [summary_document(customer)])
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 200)
    async with asyncio.timeout(WAIT_S):
        response = await request
    assert response.status_code == 200, response.text
    assert response.json()["order_count"] == 8
    assert response.headers["X-Read-Model-Stale"] == "false"


async def test_a_lagging_read_model_answers_stale_after_wait_ms(
    client: httpx.AsyncClient, document_store: DocumentStore
) -> None:
    customer = unique("c")
    await seed(document_store, CUSTOMER_SUMMARIES, [summary_document(customer)])
    await set_checkpoint(document_store, CUSTOMER_SUMMARIES, 41)
    response = await client.get(
        f"/customers/{customer}/summary",
        headers={"X-Consistency-Token": "42"},
        params={"wait_ms": 30},
    )
    assert response.status_code == 200, response.text
    assert response.json()["order_count"] == 8  # the data it has
    assert response.headers["X-Read-Model-Stale"] == "true"
    assert response.headers["X-Read-Model-Position"] == "41"


async def test_an_order_not_yet_projected_is_a_stale_404(
    client: httpx.AsyncClient, document_store: DocumentStore
) -> None:
    await set_checkpoint(document_store, ORDER_VIEWS, 7)
    response = await client.get(
        f"/orders/{uuid.uuid4()}", headers={"X-Consistency-Token": "8"}, params={"wait_ms": 0}
    )
    body = assert_problem(response, 404, "Order not found")
    assert "not caught up" in str(body["detail"])
    assert response.headers["X-Read-Model-Stale"] == "true"
    assert response.headers["X-Read-Model-Position"] == "7"


@pytest.mark.parametrize(
    "token", ["abc", "-1", "1.5", "", " ", "0x10", "01", "1e3", str(2**64), "1,2"]
)
async def test_a_malformed_token_is_a_400_problem(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(
        f"/customers/{unique('c')}/summary", headers={"X-Consistency-Token": token}
    )
    assert_problem(response, 400, "Malformed consistency token")


@pytest.mark.parametrize("wait_ms", ["-1", "10001", "soon", "1.5"])
async def test_wait_ms_out_of_range_is_a_422_problem(
    client: httpx.AsyncClient, wait_ms: str
) -> None:
    response = await client.get(f"/customers/{unique('c')}/summary", params={"wait_ms": wait_ms})
    body = assert_problem(response, 422, "Validation failed")
    assert "wait_ms" in str(body["detail"])


# --- customers ------------------------------------------------------------------------------


async def test_paging_through_a_customers_orders(
    client: httpx.AsyncClient, document_store: DocumentStore
) -> None:
    customer = unique("cust")
    documents = [
        order_document(
            customer_id=customer,
            created_at=START + timedelta(minutes=i),
            status="paid" if i % 2 else "draft",
        )
        for i in range(25)
    ]
    await seed(document_store, ORDER_VIEWS, documents)
    expected = [d["_id"] for d in sorted(documents, key=lambda d: d["created_at"], reverse=True)]

    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 10}
    for _ in range(10):
        response = await client.get(f"/customers/{customer}/orders", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["order_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 10, "cursor": page["next_cursor"]}
    assert seen == expected

    paid = await client.get(f"/customers/{customer}/orders", params={"status": "paid"})
    assert [item["order_id"] for item in paid.json()["items"]] == [
        d["_id"]
        for d in sorted(documents, key=lambda d: d["created_at"], reverse=True)
        if d["status"] == "paid"
    ]
    assert len(paid.json()["items"]) == 12 and paid.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "WzEsMiwzXQ",
        "x" * 600,
        # Valid JSON, but the date's offset pushes it past year 9999 in UTC (was a 500).
        "WzEsIjk5OTktMTItMzFUMjM6NTk6NTktMjM6NTkiLCJ4Il0",
    ],
)
async def test_a_malformed_cursor_is_a_400_problem(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(f"/customers/{unique('c')}/orders", params={"cursor": cursor})
    body = assert_problem(response, 400, "Malformed cursor")
    assert "next_cursor" in str(body["detail"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "lost"}, "status"),
    ],
)
async def test_bad_list_parameters_are_422_problems(
    client: httpx.AsyncClient, params: dict[str, str | int], field: str
) -> None:
    response = await client.get(f"/customers/{unique('c')}/orders", params=params)
    body = assert_problem(response, 422, "Validation failed")
    assert f"query.{field}" in str(body["detail"])


async def test_an_unknown_customer_has_an_all_zero_summary(client: httpx.AsyncClient) -> None:
    customer = unique("nobody")
    response = await client.get(f"/customers/{customer}/summary")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "customer_id": customer,
        "orders_by_status": {"draft": 0, "placed": 0, "paid": 0, "shipped": 0, "cancelled": 0},
        "order_count": 0,
        "open_orders": 0,
        "lifetime_paid": {},
        "last_order_at": None,
    }


async def test_a_customer_id_longer_than_100_characters_is_a_422_problem(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(await client.get(f"/customers/{'c' * 101}/summary"), 422, "Validation failed")


# --- daily sales ----------------------------------------------------------------------------


async def test_daily_sales_report(client: httpx.AsyncClient, document_store: DocumentStore) -> None:
    await seed(document_store, DAILY_SALES, [day_document("2025-03-02")])
    await set_checkpoint(document_store, DAILY_SALES, 77)
    response = await client.get(
        "/reports/daily-sales", params={"from": "2025-03-01", "to": "2025-03-02"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert [day["day"] for day in report["days"]] == ["2025-03-01", "2025-03-02"]
    assert report["days"][0]["orders_placed"] == 0
    assert report["days"][1]["revenue"] == {"EUR": 2500}
    assert report["totals"]["placed_value"] == {"EUR": 4000, "USD": 700}
    assert response.headers["X-Read-Model-Position"] == "77"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"from": "2025-03-02", "to": "2025-03-01"}, "query: from (2025-03-02) is after to"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "367 days"),
        ({"from": "2025-02-30", "to": "2025-03-01"}, "query.from"),
        ({"from": "yesterday", "to": "2025-03-01"}, "query.from"),
        ({"to": "2025-03-01"}, "query.from"),
        ({"from": "2025-03-01"}, "query.to"),
    ],
)
async def test_bad_report_ranges_are_422_problems(
    client: httpx.AsyncClient, params: dict[str, str], expected: str
) -> None:
    response = await client.get("/reports/daily-sales", params=params)
    body = assert_problem(response, 422, "Validation failed")
    assert expected in str(body["detail"])
    assert body["errors"]


# --- documentation --------------------------------------------------------------------------


async def test_the_openapi_page_documents_every_query(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    routes = {
        "/orders/{order_id}": "OrderView",
        "/customers/{customer_id}/orders": "OrderPage",
        "/customers/{customer_id}/summary": "CustomerSummaryView",
        "/reports/daily-sales": "DailySalesReport",
    }
    for path, model in routes.items():
        operation = schema["paths"][path]["get"]
        assert operation["summary"] and operation["description"]
        ok = operation["responses"]["200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert "example" in ok["content"]["application/json"]
        assert "X-Read-Model-Position" in ok["headers"]
        assert "422" in operation["responses"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"X-Consistency-Token", "wait_ms"} <= names


async def test_operator_wait_settings_bound_and_default_wait_ms(
    document_store: DocumentStore, watcher: ObservedWatcher
) -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.state.query_bus = build_query_bus(document_store, watcher=watcher)
    app.state.read_wait_ms_default = 0
    app.state.read_wait_ms_max = 500
    report = "/reports/daily-sales?from=2026-01-01&to=2026-01-01"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        too_long = await http.get(report + "&wait_ms=501")
        defaulted = await http.get(report, headers={"X-Consistency-Token": str(2**62)})

    assert_problem(too_long, 422, "Validation failed")
    assert defaulted.status_code == 200
    assert defaulted.headers["X-Read-Model-Stale"] == "true"
