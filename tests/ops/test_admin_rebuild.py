"""Rebuild over HTTP: 202 with a status URL that ends up reporting the new active version while
the daemon keeps running; 409 while a rebuild runs (here or elsewhere); stopped at shutdown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orders_api.rebuild_jobs import RebuildJobs
from projector.version_registry import read_entry
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.read_models import REGISTRY, RegistryEntry
from shared.ports.document_store import ReplaceOne
from tests.ops.support import api, bearer, create_order, running_projector
from tests.waiting import wait_until


async def test_rebuild_switches_to_a_new_version_while_the_daemon_runs(
    event_store: EsdbEventStore, document_store: MotorDocumentStore, admin_token: str
) -> None:
    auth = bearer(admin_token)
    # A long grace period keeps the job running (it waits to drop the old version) until the
    # API shuts down, so the second request below meets a running rebuild.
    settings = {"admin_token": admin_token, "projector_retire_grace_s": 600}
    async with (
        api(event_store, document_store, **settings) as (app, client),
        running_projector(event_store, document_store),
    ):
        order_id, _, position = await create_order(client, items=2)
        accepted = await client.post("/admin/projections/order_views/rebuild", headers=auth)
        again = await client.post("/admin/projections/order_views/rebuild", headers=auth)
        url = accepted.json()["status_url"]

        async def switched() -> dict[str, Any] | None:
            report = await client.get(url, headers=auth)
            assert report.status_code == 200, report.text
            body: dict[str, Any] = report.json()
            return body if body["status"]["version"] == 2 else None

        report = await wait_until(switched, "the rebuild to switch order_views to v2")
        order = await client.get(
            f"/orders/{order_id}", headers={"X-Consistency-Token": str(position)}
        )
        public = (await client.get("/projections/order_views")).json()
        jobs: RebuildJobs = app.state.rebuild_jobs
    # After shutdown (the lifespan stopped the job: it was waiting out the grace period).
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["location"] == url == "/admin/projections/order_views/rebuild"
    assert accepted.json()["job"]["state"] == "running"
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["status_url"] == url
    assert report["job"]["projection"] == "order_views"
    assert report["status"]["collection"] == "order_views_v2"
    assert public["version"] == 2
    assert order.status_code == 200 and len(order.json()["items"]) == 2  # v2 holds the order
    assert order.headers["X-Read-Model-Stale"] == "false"
    finished = jobs.job("order_views")
    assert finished is not None and finished.state == "switched"
    assert finished.version == 2 and finished.previous_version == 1
    assert not jobs.running("order_views")
    entry = await read_entry(document_store, "order_views")
    assert entry.active_version == 2 and entry.rebuild_owner is None


async def test_a_rebuild_claimed_by_another_process_is_a_409(
    event_store: EsdbEventStore, document_store: MotorDocumentStore, admin_token: str
) -> None:
    claim = RegistryEntry(
        name="daily_sales",
        active_version=1,
        rebuilding_version=2,
        rebuild_owner="other-host:4242:cafe",
        rebuild_heartbeat_at=datetime.now(UTC),
    ).to_document()
    await document_store.bulk_write(
        REGISTRY, [ReplaceOne({"_id": "daily_sales"}, claim, upsert=True)]
    )
    async with api(event_store, document_store, admin_token=admin_token) as (app, client):
        response = await client.post(
            "/admin/projections/daily_sales/rebuild", headers=bearer(admin_token)
        )
        status = await client.get(
            "/admin/projections/daily_sales/rebuild", headers=bearer(admin_token)
        )
    assert response.status_code == 409
    assert "another process" in response.json()["detail"]
    assert app.state.rebuild_jobs.job("daily_sales") is None
    assert status.json()["status"]["rebuilding"]["version"] == 2
    assert status.json()["status"]["rebuilding"]["running"] is True


async def test_shutdown_stops_a_running_rebuild_and_releases_its_claim(
    event_store: EsdbEventStore, document_store: MotorDocumentStore, admin_token: str
) -> None:
    settings = {"admin_token": admin_token, "projector_retire_grace_s": 600}
    async with api(event_store, document_store, **settings) as (app, client):
        await create_order(client, items=1)
        accepted = await client.post(
            "/admin/projections/customer_summaries/rebuild", headers=bearer(admin_token)
        )
        jobs: RebuildJobs = app.state.rebuild_jobs
        assert jobs.running("customer_summaries")
    assert accepted.status_code == 202
    job = jobs.job("customer_summaries")
    assert job is not None and job.state in {"switched", "interrupted"}
    assert job.finished_at is not None and job.error is None
    assert not jobs.running("customer_summaries")
    entry = await read_entry(document_store, "customer_summaries")
    assert entry.rebuild_owner is None  # a new rebuild (or the daemon) can take over at once
