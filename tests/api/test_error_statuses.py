"""Every error status of the command API, as RFC 9457 problem documents, and no partial writes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.ports.event_store import (
    EventStore,
)
from shared.web.problem_details import PROBLEM_TYPE_BASE
from tests.api.stubs import HotStream, UnavailableEventStore, UnusedDocumentStore
from tests.api.support import create, new_key, new_order, serve, stream_of
from tests.samples import ADDRESS

MUG = {"sku": "MUG-RED", "quantity": 2, "unit_price": 1250}


def problem(response: httpx.Response, status: int, type_name: str) -> dict[str, Any]:
    """The body of a problem answer of ``status`` and type ``type_name`` (what clients match)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == PROBLEM_TYPE_BASE + type_name
    assert body["title"] and body["detail"]
    return body


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/orders", content=b'{"customer_id": ', headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in problem(response, 400, "malformed-json")["detail"]


async def test_an_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    order_id = new_key()
    body = problem(await client.post(f"/orders/{order_id}/place"), 404, "order-not-found")
    assert order_id in body["detail"]


async def test_a_broken_rule_is_409_naming_it_and_writes_nothing(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]

    body = problem(await client.post(f"/orders/{order_id}/place"), 409, "rule-violation")

    assert body["rule"] == "place_requires_items"
    assert len(await stream_of(event_store, order_id)) == 1


async def test_paying_the_wrong_amount_is_409(client: httpx.AsyncClient) -> None:
    order_id = (await create(client, items=[MUG]))["order_id"]
    await client.post(f"/orders/{order_id}/place")
    response = await client.post(f"/orders/{order_id}/payments", json={"amount": 2499})
    assert problem(response, 409, "rule-violation")["rule"] == "payment_must_equal_outstanding"


async def test_a_stale_if_match_is_412_and_writes_nothing(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order = await create(client)
    order_id = order["order_id"]
    first = await client.post(
        f"/orders/{order_id}/items", json=MUG, headers={"If-Match": f'"{order["version"]}"'}
    )
    assert first.status_code == 200

    stale = await client.post(
        f"/orders/{order_id}/items", json=MUG, headers={"If-Match": f'"{order["version"]}"'}
    )

    body = problem(stale, 412, "version-mismatch")
    assert body["current_version"] == first.json()["version"]
    assert len(await stream_of(event_store, order_id)) == 2


@pytest.mark.parametrize("header", ["3", '"3', "W/", '"1" "2"', ","])
async def test_a_malformed_if_match_is_400(client: httpx.AsyncClient, header: str) -> None:
    order_id = (await create(client))["order_id"]
    response = await client.post(f"/orders/{order_id}/place", headers={"If-Match": header})
    assert problem(response, 400, "malformed-if-match")["title"] == "Malformed If-Match"


@pytest.mark.parametrize("header", ['W/"0"', '"abc"', '"-1"', '"01"'])
async def test_an_if_match_that_can_never_match_is_412(
    client: httpx.AsyncClient, header: str
) -> None:
    order_id = (await create(client, items=[MUG]))["order_id"]
    response = await client.post(f"/orders/{order_id}/place", headers={"If-Match": header})
    problem(response, 412, "version-mismatch")


@pytest.mark.parametrize("header", ["*", '"1"', ' "1" , W/"x" ', '"zz", "1"'])
async def test_a_matching_if_match_runs_the_command(client: httpx.AsyncClient, header: str) -> None:
    order_id = (await create(client, items=[MUG]))["order_id"]  # version 1: created + item
    response = await client.post(f"/orders/{order_id}/place", headers={"If-Match": header})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize(
    "key", [b"short", b"x" * 256, b"has space in it 123", "ключ-ключ-ключ-ключ".encode()]
)
async def test_an_invalid_idempotency_key_is_400(client: httpx.AsyncClient, key: bytes) -> None:
    response = await client.post("/orders", json=new_order(), headers={"Idempotency-Key": key})
    assert problem(response, 400, "invalid-idempotency-key")["title"] == "Invalid Idempotency-Key"


async def test_a_body_over_the_limit_is_413(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    body = new_order(customer_id="c" * (settings.max_body_bytes + 1))
    problem(await client.post("/orders", json=body), 413, "content-too-large")


async def test_a_streamed_body_over_the_limit_is_413_whatever_it_declares(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.max_body_bytes // 1024 + 2):
            yield b" " * 1024  # JSON whitespace: valid but too long

    # No Content-Length at all (chunked), so only counting the bytes can catch it.
    response = await client.post(
        "/orders", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(response, 413, "content-too-large")


async def test_a_body_just_under_the_limit_is_read(
    client: httpx.AsyncClient, settings: ApiSettings
) -> None:
    payload = b'{"amount": 5}'.ljust(settings.max_body_bytes, b" ")
    response = await client.post(
        f"/orders/{new_key()}/payments",
        content=payload,
        headers={"content-type": "application/json"},
    )
    # Parsed, validated, dispatched: the order does not exist.
    problem(response, 404, "order-not-found")


INVALID_BODIES: list[tuple[dict[str, Any], str]] = [
    (new_order(items=[{**MUG, "quantity": 12.5}]), "body.items.0.quantity"),
    (new_order(items=[{**MUG, "quantity": "12"}]), "body.items.0.quantity"),
    (new_order(items=[{**MUG, "quantity": 0}]), "body.items.0.quantity"),
    (new_order(items=[{**MUG, "quantity": 1001}]), "body.items.0.quantity"),
    (new_order(items=[{**MUG, "unit_price": 12.5}]), "body.items.0.unit_price"),
    (new_order(items=[{**MUG, "unit_price": "1250"}]), "body.items.0.unit_price"),
    (new_order(items=[{**MUG, "unit_price": -1}]), "body.items.0.unit_price"),
    (new_order(items=[{**MUG, "unit_price": True}]), "body.items.0.unit_price"),
    (new_order(currency="eur"), "body.currency"),
    (new_order(currency="EURO"), "body.currency"),
    (new_order(customer_id=""), "body.customer_id"),
    (
        new_order(shipping_address={**ADDRESS, "country": "Ireland"}),
        "body.shipping_address.country",
    ),
    (
        new_order(shipping_address={k: v for k, v in ADDRESS.items() if k != "city"}),
        "body.shipping_address.city",
    ),
    (new_order(unexpected=1), "body.unexpected"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES)
async def test_an_invalid_create_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    errors = problem(await client.post("/orders", json=body), 422, "validation-failed")["errors"]
    assert field in [error["field"] for error in errors]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("items", {**MUG, "quantity": 2.5}, "body.quantity"),
        ("items", {"sku": "MUG"}, "body.quantity"),
        ("payments", {"amount": 12.5}, "body.amount"),
        ("payments", {"amount": "12"}, "body.amount"),
        ("payments", {"amount": -1}, "body.amount"),
        ("ship", {"carrier": "DHL"}, "body.tracking_number"),
        ("cancel", {"reason": ""}, "body.reason"),
    ],
)
async def test_an_invalid_command_body_is_422_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(f"/orders/{new_key()}/{path}", json=body)
    errors = problem(response, 422, "validation-failed")["errors"]
    assert field in [error["field"] for error in errors]


async def test_an_order_id_that_is_no_uuid_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders/not-a-uuid/place")
    errors = problem(response, 422, "validation-failed")["errors"]
    assert [error["field"] for error in errors] == ["path.order_id"]


async def test_unknown_routes_and_methods_are_problems_too(client: httpx.AsyncClient) -> None:
    problem(await client.get("/nowhere"), 404, "not-found")
    problem(await client.get(f"/orders/{new_key()}/place"), 405, "method-not-allowed")


async def test_an_unreachable_event_store_is_503_with_retry_after(
    responses: list[httpx.Response],
) -> None:
    app = create_app(
        ApiSettings(),
        event_store=UnavailableEventStore(retry_after_s=3),
        document_store=UnusedDocumentStore(),
    )
    async with serve(app, responses) as client:
        created = await client.post("/orders", json=new_order())
        added = await client.post(f"/orders/{new_key()}/items", json=MUG)

    for response in (created, added):
        assert problem(response, 503, "store-unavailable")["store"] == "eventstore"
        assert response.headers["Retry-After"] == "3"


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port: int = listener.getsockname()[1]
        return port


async def test_a_real_adapter_with_no_server_behind_it_is_503(
    responses: list[httpx.Response],
) -> None:
    store = EsdbEventStore(f"esdb://127.0.0.1:{free_port()}?Tls=false", retry_budget_s=0.5)
    await store.connect()
    app = create_app(ApiSettings(), event_store=store, document_store=UnusedDocumentStore())
    try:
        async with serve(app, responses) as client:
            response = await client.post("/orders", json=new_order())
    finally:
        await store.close()
    problem(response, 503, "store-unavailable")
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_conflict_that_outlasts_the_retries_is_409_with_retry_after(
    responses: list[httpx.Response],
) -> None:
    store = HotStream()
    app = create_app(
        ApiSettings(command_max_attempts=3), event_store=store, document_store=UnusedDocumentStore()
    )
    async with serve(app, responses) as client:
        order_id = (await create(client))["order_id"]
        response = await client.post(f"/orders/{order_id}/items", json=MUG)

    body = problem(response, 409, "concurrent-modification")
    assert "rule" not in body
    assert response.headers["Retry-After"] == "1"
    assert store.appends == 1 + 3  # the create, then one decide-append round per attempt
    assert len(await stream_of(store, order_id)) == 1


async def test_an_unexpected_error_is_a_500_problem_without_a_trace(
    event_store: EventStore,
) -> None:
    app = create_app(ApiSettings(), event_store=event_store, document_store=UnusedDocumentStore())

    async def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/broken", broken)  # a bug stands in for any unforeseen failure
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://orders.test") as client,
    ):
        response = await client.get("/broken", headers={"X-Correlation-ID": "trace-500"})

    body = problem(response, 500, "internal-error")
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert body["detail"] == "an unexpected error occurred; it was logged"
    assert response.headers["X-Correlation-ID"] == "trace-500"
