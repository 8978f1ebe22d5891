"""``GET /metrics``: commands by type and outcome, latency, queries, read-your-writes, and the
projection gauges, parsed with prometheus_client's own parser."""

from __future__ import annotations

import uuid

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from tests.ops.support import api, create_order, sample, samples
from tests.samples import ADDRESS


async def test_commands_queries_and_projections_are_counted(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store, max_body_bytes=1024) as (_, client):
        order_id, customer, position = await create_order(client, items=1)
        assert (await client.post(f"/orders/{order_id}/place")).status_code == 200
        assert (await client.post(f"/orders/{order_id}/place")).status_code == 409
        assert (await client.post(f"/orders/{uuid.uuid4()}/place")).status_code == 404
        assert (await client.post("/orders", json={"currency": "EUR"})).status_code == 422
        too_big = {"customer_id": "c", "currency": "EUR", "shipping_address": ADDRESS}
        too_big["padding"] = "x" * 2048
        assert (await client.post("/orders", json=too_big)).status_code == 413
        # Queries: the projector is not running, so a token is never reached (wait_ms=0).
        assert (await client.get(f"/customers/{customer}/summary")).status_code == 200
        stale = await client.get(
            f"/customers/{customer}/summary?wait_ms=0",
            headers={"X-Consistency-Token": str(position)},
        )
        assert stale.headers["X-Read-Model-Stale"] == "true"
        assert (await client.get(f"/orders/{order_id}")).status_code == 404
        scraped = await client.get("/metrics")
        again = samples((await client.get("/metrics")).text)

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    parsed = samples(scraped.text)

    def commands(command: str, outcome: str) -> float | None:
        return sample(parsed, "orders_api_commands_total", command=command, outcome=outcome)

    assert commands("create_order", "success") == 1
    assert commands("add_item", "success") == 1
    assert commands("place_order", "success") == 1
    assert commands("place_order", "conflict") == 1
    assert commands("place_order", "not_found") == 1
    assert commands("create_order", "invalid") == 1
    assert commands("create_order", "too_large") == 1  # rejected before routing, still counted
    count = sample(parsed, "orders_api_command_duration_seconds_count", command="create_order")
    assert count == 3
    assert sample(parsed, "orders_api_command_duration_seconds_count", command="place_order") == 3

    def queries(endpoint: str, outcome: str) -> float | None:
        return sample(parsed, "orders_api_queries_total", endpoint=endpoint, outcome=outcome)

    assert queries("get_customer_summary", "success") == 2
    assert queries("get_order", "not_found") == 1
    ryw = "orders_api_read_your_writes"
    assert sample(parsed, f"{ryw}_requests_total", endpoint="get_customer_summary") == 1
    assert sample(parsed, f"{ryw}_stale_total", endpoint="get_customer_summary") == 1
    assert sample(parsed, f"{ryw}_requests_total", endpoint="get_order") is None
    assert sample(parsed, f"{ryw}_waiting") == 0
    # Operations endpoints are neither commands nor queries.
    assert not any("metrics" in dict(labels).values() for _, labels in parsed)
    assert sample(again, "orders_api_queries_total", endpoint="get_order", outcome="not_found") == 1

    assert sample(parsed, "orders_api_projection_status_ok") == 1
    for name in ("order_views", "customer_summaries", "daily_sales"):
        assert sample(parsed, "orders_api_projection_version", projection=name) == 1
        assert sample(parsed, "orders_api_projection_checkpoint_position", projection=name) == 0
        assert sample(parsed, "orders_api_projection_failed", projection=name) == 0
        assert sample(parsed, "orders_api_projection_dead_letters", projection=name) == 0
        lag = sample(parsed, "orders_api_projection_lag_events", projection=name)
        assert lag is not None and lag >= 1  # at least this test's events are pending
        assert sample(parsed, "orders_api_projection_lag_seconds", projection=name) is not None
        state = sample(
            parsed,
            "orders_api_projection_state",
            projection=name,
            orders_api_projection_state="not_started",
        )
        assert state == 1


async def test_each_app_has_its_own_registry(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    async with api(event_store, document_store) as (_, first):
        await create_order(first, items=0)
        async with api(event_store, document_store) as (_, second):
            parsed = samples((await second.get("/metrics")).text)
            mine = samples((await first.get("/metrics")).text)
    metric = "orders_api_commands_total"
    assert sample(parsed, metric, command="create_order", outcome="success") is None
    assert sample(mine, metric, command="create_order", outcome="success") == 1
