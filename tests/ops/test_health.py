"""Liveness and readiness: both stores up, one down (named, with the reason), a failed
projection reported without making the API unready."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from orders_api.health import PING_TIMEOUT_S
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.read_models import CHECKPOINTS
from shared.ports.document_store import DocumentStore, UpdateOne
from shared.ports.event_store import EventStore
from tests.misbehaving_servers import garbage_server, silent_server
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


async def ready_over(
    events: EventStore, documents: DocumentStore, *, then_close: EventStore | DocumentStore
) -> httpx.Response:
    """GET /health/ready of an API over the two stores; ``then_close`` (the broken store the
    test made) is closed afterwards."""
    try:
        async with api(events, documents) as (_, client):
            return await client.get("/health/ready")
    finally:
        await then_close.close()


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
    response = await ready_over(event_store, documents, then_close=documents)
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
    response = await ready_over(events, document_store, then_close=events)
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


@pytest.mark.parametrize("misbehaving", [garbage_server, silent_server])
async def test_never_ready_while_the_event_store_answers_garbage_or_nothing(
    document_store: MotorDocumentStore,
    misbehaving: Callable[[], contextlib.AbstractAsyncContextManager[int]],
) -> None:
    # esdbclient swallows the cancellation of a read and returns as if the log were empty: a
    # probe bounded by asyncio.wait_for then said "eventstore: ok" (2 of 4 tries). Every try.
    async with misbehaving() as port:
        events = EsdbEventStore(f"esdb://127.0.0.1:{port}?Tls=false", retry_budget_s=30)
        await events.connect()
        try:
            async with api(events, document_store) as (_, client):
                responses = [await client.get("/health/ready") for _ in range(5)]
        finally:
            await events.close()
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        checks = response.json()["checks"]
        assert checks["mongodb"] == "ok"
        # The store's own budget (30 s) is far beyond the probe's: only the probe's bound
        # can have answered.
        assert checks["eventstore"] == f"unavailable: no answer within {PING_TIMEOUT_S:g}s"


async def test_not_ready_body_shows_no_driver_reason(
    event_store: EsdbEventStore, caplog: pytest.LogCaptureFixture
) -> None:
    documents = unreachable_mongo()
    response = await ready_over(event_store, documents, then_close=documents)
    assert response.status_code == 503
    # pymongo's reason names the host, port and its timeouts: the log has it, the body not.
    assert "127.0.0.1" not in response.text and "Timeout" not in response.text
    assert response.json()["checks"]["mongodb"] == "unavailable: the ping failed"
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not ready")]
    assert "127.0.0.1" in line
