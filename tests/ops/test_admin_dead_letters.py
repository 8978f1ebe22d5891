"""Dead letters over HTTP: park the event a failed projection stopped on, list what is parked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from projector.checkpoint_store import load_checkpoint
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.order_events import order_stream
from shared.contract.read_models import CHECKPOINTS
from shared.ports.document_store import UpdateOne
from tests.ops.support import api, bearer, create_order


async def test_park_the_failing_event_then_list_it(
    event_store: EsdbEventStore, document_store: MotorDocumentStore, admin_token: str
) -> None:
    auth = bearer(admin_token)
    async with api(event_store, document_store, admin_token=admin_token) as (_, client):
        order_id, _, _ = await create_order(client, items=1)
        [_, poison] = await event_store.read_stream(order_stream(uuid.UUID(order_id)))
        failure = {
            "event_id": str(poison.event_id),
            "stream": poison.stream,
            "revision": poison.revision,
            "position": poison.position,
            "event_type": poison.type,
            "error": "ValueError: cannot apply",
            "attempts": 3,
            "failed_at": datetime.now(UTC),
        }
        checkpoint = {
            "projection": "order_views",
            "version": 1,
            "position": poison.position - 1,
            "state": "failed",
            "error": failure,
        }
        await document_store.bulk_write(
            CHECKPOINTS,
            [UpdateOne({"_id": "order_views_v1"}, {"$set": checkpoint}, upsert=True)],
        )
        degraded = (await client.get("/health/ready")).json()
        parked = await client.post("/admin/projections/order_views/dead-letters/park", headers=auth)
        again = await client.post("/admin/projections/order_views/dead-letters/park", headers=auth)
        listed = await client.get("/admin/dead-letters", headers=auth)
        only_views = await client.get("/admin/dead-letters?projection=order_views", headers=auth)
        only_sales = await client.get("/admin/dead-letters?projection=daily_sales", headers=auth)
        ready = (await client.get("/health/ready")).json()

    assert degraded["status"] == "degraded"
    assert parked.status_code == 200, parked.text
    [letter] = parked.json()["parked"]
    assert letter["event_id"] == str(poison.event_id)
    assert letter["position"] == poison.position
    assert letter["projection"] == "order_views" and letter["version"] == 1
    assert letter["data"] is not None and order_id in letter["data"]
    assert again.status_code == 409
    assert again.json()["title"] == "Nothing to park"
    assert [d["event_id"] for d in listed.json()["dead_letters"]] == [str(poison.event_id)]
    assert only_views.json() == listed.json()
    assert only_sales.json() == {"dead_letters": []}
    record = await load_checkpoint(document_store, "order_views_v1")
    assert record is not None and record.failure is None
    assert record.state == "catching_up" and record.position == poison.position
    assert ready["status"] == "ready"
