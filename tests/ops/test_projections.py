"""``GET /projections``: version, checkpoint, head, lag (events and seconds) and state of each
projection, from checkpoint documents written directly and from a real projector run."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.read_models import CHECKPOINTS, REGISTRY
from shared.ports.document_store import UpdateOne
from tests.ops.support import PROJECTION_NAMES, api, by_name, create_order, running_projector
from tests.samples import ADDRESS
from tests.waiting import wait_until


async def test_status_from_checkpoint_documents(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store) as (_, client):
        created = await client.post(
            "/orders",
            json={
                "customer_id": "cust-ops",
                "currency": "EUR",
                "shipping_address": ADDRESS,
            },
        )
        assert created.status_code == 201, created.text
        order_id, first = created.json()["order_id"], created.json()["position"]
        positions = [first]
        for sku in ("SKU-A", "SKU-B"):
            added = await client.post(
                f"/orders/{order_id}/items", json={"sku": sku, "quantity": 1, "unit_price": 100}
            )
            positions.append(added.json()["position"])
        # order_views v3 stopped after the order was created; the registry says v3 is active.
        now = datetime.now(UTC)
        await document_store.bulk_write(
            REGISTRY, [UpdateOne({"_id": "order_views"}, {"$set": {"active_version": 3}}, True)]
        )
        await document_store.bulk_write(
            CHECKPOINTS,
            [
                UpdateOne(
                    {"_id": "order_views_v3"},
                    {
                        "$set": {
                            "projection": "order_views",
                            "version": 3,
                            "position": first,
                            "state": "catching_up",
                            "last_event_at": now,
                            "updated_at": now,
                            "error": None,
                        }
                    },
                    upsert=True,
                )
            ],
        )
        response = await client.get("/projections")
        single = await client.get("/projections/order_views")

    assert response.status_code == 200, response.text
    body = response.json()
    assert "approximate" in body["note"]
    statuses = by_name(body["projections"])
    assert list(statuses) == PROJECTION_NAMES
    views = statuses["order_views"]
    assert views["version"] == 3
    assert views["collection"] == "order_views_v3"
    assert views["state"] == "catching_up"
    assert views["checkpoint_position"] == first
    assert views["head_position"] == positions[-1]  # nothing else is appended meanwhile
    assert views["lag_events"] == 2 and views["lag_events_exact"] is True  # the two ItemAdded
    assert views["lag_seconds"] is not None and views["lag_seconds"] >= 0
    assert views["error"] is None and views["rebuilding"] is None
    for name in ("customer_summaries", "daily_sales"):
        assert statuses[name]["state"] == "not_started"
        assert statuses[name]["checkpoint_position"] == 0
    assert single.status_code == 200
    assert single.json()["checkpoint_position"] == first


async def test_status_after_the_projector_caught_up(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store) as (_, client):
        _, _, position = await create_order(client, items=2)
        async with running_projector(event_store, document_store):

            async def all_live() -> list[dict[str, object]] | None:
                statuses = (await client.get("/projections")).json()["projections"]
                live = all(s["state"] == "live" and s["lag_events"] == 0 for s in statuses)
                return statuses if live else None

            statuses = by_name(await wait_until(all_live, "every projection to be live"))
            instances = (await client.get("/projections")).json()["instances"]

    # One projector instance runs: it holds every projection's lease.
    [instance] = instances
    assert sorted(instance["leases"]) == sorted(PROJECTION_NAMES)
    for name in PROJECTION_NAMES:
        status = statuses[name]
        assert status["owner"] == instance["instance_id"]
        assert status["lease_expires_at"] is not None
        assert status["version"] == 1
        assert status["lag_seconds"] == 0.0
        assert status["lag_events_exact"] is True
    assert statuses["order_views"]["checkpoint_position"] >= position
    assert statuses["order_views"]["last_event_at"] is not None


async def test_an_unknown_projection_is_a_404_listing_the_known_ones(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store) as (_, client):
        response = await client.get("/projections/orders")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["known"] == PROJECTION_NAMES
    assert "order_views" in response.json()["detail"]
