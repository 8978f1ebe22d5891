"""Liveness and readiness: both stores up, one down (named, with the reason), a failed
projection reported without making the API unready."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.document_store import UpdateOne
from shared.esdb_event_store import EsdbEventStore
from shared.motor_document_store import MotorDocumentStore
from shared.read_models import CHECKPOINTS
from tests.ops.support import PROJECTION_NAMES, api, by_name, closed_port


def unreachable_mongo(password: str = "") -> MotorDocumentStore:
    credentials = f"opsuser:{password}@" if password else ""
    return MotorDocumentStore(
        f"mongodb://{credentials}127.0.0.1:{closed_port()}/?directConnection=true",
        "nowhere",
        server_selection_timeout_ms=200,
        connect_timeout_ms=200,
        attempts=1,
    )


async def unreachable_eventstore() -> EsdbEventStore:
    store = EsdbEventStore(f"esdb://127.0.0.1:{closed_port()}?Tls=false", retry_budget_s=0.3)
    await store.connect()
    return store


async def test_live_answers_while_the_process_runs(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store) as (_, client):
        response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "live"}


async def test_ready_when_both_stores_answer_with_projection_lag(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store) as (_, client):
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"eventstore": "ok", "mongodb": "ok"}
    assert body["warnings"] == []
    projections = by_name(body["projections"])
    assert list(projections) == PROJECTION_NAMES
    for lag in projections.values():
        assert lag["version"] == 1
        assert lag["state"] == "not_started"  # a fresh database: the projector never ran
        assert set(lag) >= {"lag_events", "lag_events_exact", "lag_seconds", "error"}


async def test_not_ready_names_mongodb_when_it_is_down(event_store: EsdbEventStore) -> None:
    documents = unreachable_mongo()
    try:
        async with api(event_store, documents) as (_, client):
            response = await client.get("/health/ready")
    finally:
        await documents.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["detail"] == "unreachable: mongodb"
    assert body["checks"]["eventstore"] == "ok"
    assert body["checks"]["mongodb"].startswith("unavailable: ")
    assert len(body["checks"]["mongodb"]) > len("unavailable: ")  # the reason is given


async def test_not_ready_names_the_event_store_when_it_is_down(
    document_store: MotorDocumentStore,
) -> None:
    events = await unreachable_eventstore()
    try:
        async with api(events, document_store) as (_, client):
            response = await client.get("/health/ready")
    finally:
        await events.close()
    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "unreachable: eventstore"
    assert body["checks"]["mongodb"] == "ok"
    assert body["checks"]["eventstore"].startswith("unavailable: ")


async def test_a_failed_projection_degrades_but_does_not_unready(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    event_id = uuid.uuid4()
    failure = {
        "event_id": str(event_id),
        "stream": f"order-{uuid.uuid4()}",
        "revision": 2,
        "position": 1234,
        "event_type": "PaymentReceived",
        "error": "KeyError: 'amount'",
        "attempts": 3,
        "failed_at": datetime.now(UTC),
    }
    await document_store.bulk_write(
        CHECKPOINTS,
        [
            UpdateOne(
                {"_id": "daily_sales_v1"},
                {
                    "$set": {
                        "projection": "daily_sales",
                        "version": 1,
                        "position": 1000,
                        "state": "failed",
                        "error": failure,
                    }
                },
                upsert=True,
            )
        ],
    )
    async with api(event_store, document_store) as (_, client):
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    failed = by_name(body["projections"])["daily_sales"]
    assert failed["state"] == "failed"
    assert str(event_id) in failed["error"] and "KeyError" in failed["error"]
    [warning] = body["warnings"]
    assert "daily_sales" in warning
    assert "/admin/projections/daily_sales/dead-letters/park" in warning
