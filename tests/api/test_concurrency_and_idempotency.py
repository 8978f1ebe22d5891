"""Concurrent requests on one order, pinned versions, and repeated requests with one key,
checked by reading the order's stream."""

from __future__ import annotations

import asyncio

import httpx

from shared.ports.event_store import EventStore
from tests.api.support import create, data, metadata, new_key, new_order, stream_of

CONCURRENCY = 20


async def test_concurrent_item_additions_all_succeed_and_add_up(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]
    quantities = range(1, CONCURRENCY + 1)

    answers = await asyncio.gather(
        *(
            client.post(
                f"/orders/{order_id}/items",
                json={"sku": "BOLT", "quantity": quantity, "unit_price": 10},
            )
            for quantity in quantities
        )
    )

    assert [a.status_code for a in answers] == [200] * CONCURRENCY, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == list(range(1, CONCURRENCY + 1))
    added = [data(e) for e in await stream_of(event_store, order_id) if e.type == "ItemAdded"]
    assert sum(item["quantity"] for item in added) == sum(quantities)


async def test_with_one_pinned_version_exactly_one_of_concurrent_requests_wins(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order = await create(client)
    pinned = {"If-Match": f'"{order["version"]}"'}

    answers = await asyncio.gather(
        *(
            client.post(
                f"/orders/{order['order_id']}/items",
                json={"sku": f"SKU-{n}", "quantity": 1, "unit_price": 10},
                headers=pinned,
            )
            for n in range(CONCURRENCY)
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [412] * (CONCURRENCY - 1), [a.text for a in answers]
    events = await stream_of(event_store, order["order_id"])
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded"]


async def test_a_repeated_request_with_one_key_appends_once_and_answers_the_same(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]
    key = {"Idempotency-Key": new_key()}
    item = {"sku": "MUG", "quantity": 2, "unit_price": 1250}

    first = await client.post(f"/orders/{order_id}/items", json=item, headers=key)
    # Another command in between: the repeat must still answer the original result.
    await client.post(f"/orders/{order_id}/items", json={**item, "sku": "CUP"})
    again = await client.post(f"/orders/{order_id}/items", json=item, headers=key)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    events = await stream_of(event_store, order_id)
    assert [data(e)["sku"] for e in events if e.type == "ItemAdded"] == ["MUG", "CUP"]


async def test_concurrent_requests_with_one_key_append_once_and_answer_the_same(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]
    key = new_key()

    answers = await asyncio.gather(
        *(
            client.post(
                f"/orders/{order_id}/items",
                json={"sku": "MUG", "quantity": 2, "unit_price": 1250},
                headers={"Idempotency-Key": key},
            )
            for _ in range(CONCURRENCY)
        )
    )

    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    events = await stream_of(event_store, order_id)
    keyed = [e for e in events if metadata(e).get("idempotency_key") == key]
    assert len(keyed) == 1 and keyed[0].type == "ItemAdded"
    assert len(events) == 2


async def test_creating_twice_with_one_key_yields_one_order(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    key = {"Idempotency-Key": new_key()}
    body = new_order(items=[{"sku": "MUG", "quantity": 1, "unit_price": 500}])

    first = await client.post("/orders", json=body, headers=key)
    again = await client.post("/orders", json=body, headers=key)
    concurrent = await asyncio.gather(
        *(client.post("/orders", json=body, headers=key) for _ in range(CONCURRENCY))
    )

    assert first.status_code == 201, first.text
    for answer in (again, *concurrent):
        assert answer.status_code == 201, answer.text
        assert answer.json() == first.json()
        assert answer.headers["Location"] == first.headers["Location"]
    events = await stream_of(event_store, first.json()["order_id"])
    assert [e.type for e in events] == ["OrderCreated", "ItemAdded"]


async def test_reusing_a_key_for_a_different_request_is_409(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    order_id = (await create(client))["order_id"]
    key = {"Idempotency-Key": new_key()}
    item = {"sku": "MUG", "quantity": 2, "unit_price": 1250}
    assert (await client.post(f"/orders/{order_id}/items", json=item, headers=key)).is_success

    other = await client.post(
        f"/orders/{order_id}/items", json={**item, "quantity": 3}, headers=key
    )

    assert other.status_code == 409
    assert other.json()["rule"] == "idempotency_key_reused"
    assert len(await stream_of(event_store, order_id)) == 2
