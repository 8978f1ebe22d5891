"""Two API processes over one event store (two apps, each with its own cache of recently decided
orders): whatever one writes, the other decides on and answers from the order as stored, never
from what it had cached, and a repeated Idempotency-Key answers its first result through
either."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.ports.event_store import EventStore
from tests.api.stubs import UnusedDocumentStore
from tests.api.support import create, data, new_key, serve, stream_of


@pytest.fixture
async def second(
    settings: ApiSettings, event_store: EventStore, responses: list[httpx.Response]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of another API process over the same event store as ``client``."""
    app = create_app(settings, event_store=event_store, document_store=UnusedDocumentStore())
    async with serve(app, responses) as client:
        yield client


def item(sku: str, quantity: int = 1) -> dict[str, object]:
    return {"sku": sku, "quantity": quantity, "unit_price": 100}


async def test_each_process_decides_on_what_the_other_wrote(
    client: httpx.AsyncClient, second: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]
    items = f"/orders/{order_id}/items"
    assert (await client.post(items, json=item("A", 1))).status_code == 200
    added = await second.post(items, json=item("A", 600))
    assert added.status_code == 200
    # Within the line maximum on the order the first process last saw; over it on the order.
    over = await client.post(items, json=item("A", 500))
    assert over.status_code == 409 and over.json()["rule"] == "line_quantity_exceeds_max"
    # The version the other process answered holds for this one too.
    removed = await client.delete(f"{items}/A", headers={"If-Match": added.headers["ETag"]})
    assert removed.status_code == 200, removed.text
    assert removed.json()["version"] == 3
    added_elsewhere = await second.post(items, json=item("B", 2))
    assert added_elsewhere.json()["version"] == 4
    assert (await client.post(f"/orders/{order_id}/place")).json()["version"] == 5
    events = await stream_of(event_store, order_id)
    assert [e.revision for e in events] == [0, 1, 2, 3, 4, 5]
    assert [line["sku"] for line in data(events[-1])["lines"]] == ["B"]
    assert data(events[-1])["total"] == 200


async def test_a_stale_pinned_version_is_still_refused(
    client: httpx.AsyncClient, second: httpx.AsyncClient, event_store: EventStore
) -> None:
    order = await create(client)
    items = f"/orders/{order['order_id']}/items"
    await second.post(items, json=item("A"))
    stale = await client.post(items, json=item("B"), headers={"If-Match": f'"{order["version"]}"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 1
    assert len(await stream_of(event_store, order["order_id"])) == 2


async def test_a_repeated_key_answers_its_first_result_through_either_process(
    client: httpx.AsyncClient, second: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]
    items = f"/orders/{order_id}/items"
    key = {"Idempotency-Key": new_key()}
    await second.post(items, json=item("A"))
    first = await second.post(items, json=item("B"), headers=key)
    for api in (client, second, client):
        again = await api.post(items, json=item("B"), headers=key)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert again.headers["ETag"] == first.headers["ETag"]
    reused = await client.post(items, json=item("B", 2), headers=key)
    assert reused.status_code == 409 and reused.json()["rule"] == "idempotency_key_reused"
    events = await stream_of(event_store, order_id)
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded", "ItemAdded"]


async def test_an_order_created_through_one_process_is_not_created_again_through_the_other(
    client: httpx.AsyncClient, second: httpx.AsyncClient, event_store: EventStore
) -> None:
    key = {"Idempotency-Key": new_key()}
    body = {
        "customer_id": "cust-1",
        "currency": "EUR",
        "shipping_address": {
            "line1": "1 Main Street",
            "city": "Dublin",
            "postal_code": "D01",
            "country": "IE",
        },
    }
    first = await client.post("/orders", json=body, headers=key)
    again = await second.post("/orders", json=body, headers=key)
    other_request = await second.post("/orders", json={**body, "currency": "USD"}, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert other_request.status_code == 409
    assert len(await stream_of(event_store, first.json()["order_id"])) == 1
