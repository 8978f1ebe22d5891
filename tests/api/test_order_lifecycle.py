"""An order's whole life over HTTP, checked against what the event store holds."""

from __future__ import annotations

import httpx

from shared.ports.event_store import EventStore
from tests.api.support import create, data, metadata, new_key, stream_of
from tests.samples import ADDRESS

MUG = {"sku": "MUG-RED", "quantity": 2, "unit_price": 1250}
PLATE = {"sku": "PLATE-7", "quantity": 3, "unit_price": 800}


def assert_accepted(response: httpx.Response, order_id: str) -> dict[str, int]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order_id"] == order_id
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert response.headers["X-Consistency-Token"] == str(body["position"])
    return {"version": body["version"], "position": body["position"]}


async def test_an_order_goes_from_draft_to_shipped(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    created = await client.post(
        "/orders",
        json={
            "customer_id": "cust-1",
            "currency": "EUR",
            "shipping_address": ADDRESS,
            "items": [MUG],
        },
    )
    assert created.status_code == 201, created.text
    order = created.json()
    order_id = order["order_id"]
    assert created.headers["Location"] == f"/orders/{order_id}"
    assert created.headers["ETag"] == f'"{order["version"]}"'
    assert created.headers["X-Consistency-Token"] == str(order["position"])

    new_address = {**ADDRESS, "line1": "2 Side Street", "line2": "Flat 3"}
    steps: list[tuple[str, str, object]] = [
        ("POST", "items", PLATE),
        ("DELETE", "items/PLATE-7", None),
        ("PUT", "shipping-address", {"shipping_address": new_address}),
        ("POST", "place", None),
        ("POST", "payments", {"amount": 2500}),
        ("POST", "ship", {"carrier": "DHL", "tracking_number": "JD0146"}),
    ]
    results = [order]
    for method, path, body in steps:  # in order: each needs the state the last one left
        response = await client.request(method, f"/orders/{order_id}/{path}", json=body)
        results.append(assert_accepted(response, order_id))

    versions = [r["version"] for r in results]
    positions = [r["position"] for r in results]
    assert versions == list(range(versions[0], versions[0] + len(results)))
    assert positions == sorted(set(positions))

    events = await stream_of(event_store, order_id)
    assert [e.type for e in events] == [
        "OrderCreated",
        "ItemAdded",
        "ItemAdded",
        "ItemRemoved",
        "ShippingAddressChanged",
        "OrderPlaced",
        "PaymentReceived",
        "OrderShipped",
    ]
    assert events[-1].revision == versions[-1]
    assert events[-1].position == positions[-1]
    placed = data(events[5])
    assert placed["total"] == 2500
    assert [line["sku"] for line in placed["lines"]] == ["MUG-RED"]
    assert data(events[4])["shipping_address"] == new_address
    assert data(events[7])["tracking_number"] == "JD0146"


async def test_cancelling_a_paid_order_records_the_refund_due(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client, items=[MUG, PLATE]))["order_id"]
    assert_accepted(await client.post(f"/orders/{order_id}/place"), order_id)
    assert_accepted(
        await client.post(f"/orders/{order_id}/payments", json={"amount": 4900}), order_id
    )

    cancelled = await client.post(
        f"/orders/{order_id}/cancel", json={"reason": "customer changed their mind"}
    )

    accepted = assert_accepted(cancelled, order_id)
    last = (await stream_of(event_store, order_id))[-1]
    assert last.type == "OrderCancelled"
    assert (last.revision, last.position) == (accepted["version"], accepted["position"])
    assert data(last)["refund_due"] == 4900
    assert data(last)["previous_status"] == "paid"


async def test_the_correlation_id_is_echoed_and_stored_with_the_events(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    correlation = f"trace-{new_key()}"
    created = await client.post(
        "/orders",
        json={"customer_id": "c", "currency": "EUR", "shipping_address": ADDRESS},
        headers={"X-Correlation-ID": correlation},
    )
    assert created.status_code == 201
    assert created.headers["X-Correlation-ID"] == correlation
    order_id = created.json()["order_id"]

    added = await client.post(f"/orders/{order_id}/items", json=MUG)
    generated = added.headers["X-Correlation-ID"]
    assert generated and generated != correlation

    events = await stream_of(event_store, order_id)
    assert [metadata(e)["correlation_id"] for e in events] == [correlation, generated]


async def test_a_malformed_correlation_id_is_replaced_not_rejected(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    created = await client.post(
        "/orders",
        json={"customer_id": "c", "currency": "EUR", "shipping_address": ADDRESS},
        headers={"X-Correlation-ID": "bad id\twith spaces"},
    )
    assert created.status_code == 201
    chosen = created.headers["X-Correlation-ID"]
    assert chosen != "bad id\twith spaces" and " " not in chosen
    events = await stream_of(event_store, created.json()["order_id"])
    assert metadata(events[0])["correlation_id"] == chosen


async def test_errors_echo_the_correlation_id_too(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/orders/{new_key()}/place", headers={"X-Correlation-ID": "trace-404"}
    )
    assert response.status_code == 404
    assert response.headers["X-Correlation-ID"] == "trace-404"


async def test_liveness_answers_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "live"}


async def test_an_order_of_free_items_is_paid_with_zero_and_shipped(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    free = {"sku": "SAMPLE-FREE", "quantity": 1, "unit_price": 0}
    order_id = (await create(client, items=[free]))["order_id"]
    assert_accepted(await client.post(f"/orders/{order_id}/place"), order_id)

    paid = await client.post(f"/orders/{order_id}/payments", json={"amount": 0})
    shipped = await client.post(
        f"/orders/{order_id}/ship", json={"carrier": "DHL", "tracking_number": "FREE1"}
    )

    assert_accepted(paid, order_id)
    assert_accepted(shipped, order_id)
    types = [event.type for event in await stream_of(event_store, order_id)]
    assert types[-2:] == ["PaymentReceived", "OrderShipped"]


async def test_the_largest_order_the_api_documents_is_paid_and_shipped(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    """As many items as the OpenAPI document allows, each at its largest quantity and price:
    the total is still a payment the document allows."""
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    item = schemas["NewItemBody"]["properties"]
    count = schemas["CreateOrderBody"]["properties"]["items"]["maxItems"]
    quantity, price = int(item["quantity"]["maximum"]), int(item["unit_price"]["maximum"])
    items = [{"sku": f"BIG-{n}", "quantity": quantity, "unit_price": price} for n in range(count)]
    total = count * quantity * price
    assert total <= schemas["RecordPaymentBody"]["properties"]["amount"]["maximum"]

    order_id = (await create(client, items=items))["order_id"]
    assert_accepted(await client.post(f"/orders/{order_id}/place"), order_id)
    paid = await client.post(f"/orders/{order_id}/payments", json={"amount": total})
    assert_accepted(paid, order_id)
    shipped = await client.post(
        f"/orders/{order_id}/ship", json={"carrier": "DHL", "tracking_number": "BIG1"}
    )
    assert_accepted(shipped, order_id)

    events = await stream_of(event_store, order_id)
    assert data(events[-3])["total"] == total
    assert data(events[-2])["amount"] == total
