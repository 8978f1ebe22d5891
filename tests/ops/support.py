"""Helpers of the operations tests: an API over given stores, a projector in a task, waiting
on conditions, orders created over HTTP, and Prometheus text parsed into samples."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from projector.catalog import subscription_event_types
from projector.daemon import run_daemon
from projector.projections import all_projections
from projector.runner import RunnerSettings
from shared.contract import read_models as shared_read_models
from shared.contract.order_events import build_order_event_registry
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStore
from tests.api.support import serve
from tests.samples import ADDRESS

WAIT_S = 30.0
FAST = RunnerSettings(
    batch_size=200, batch_wait_s=0.02, idle_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.2
)
PROJECTION_NAMES = list(shared_read_models.PROJECTION_NAMES)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def api(
    events: EventStore,
    documents: DocumentStore,
    seen: list[httpx.Response] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The API over the given stores, its lifespan running, and an in-process client."""
    app = create_app(ApiSettings(**settings), event_store=events, document_store=documents)
    async with serve(app, seen if seen is not None else [], timeout_s=WAIT_S) as client:
        yield app, client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_order(client: httpx.AsyncClient, items: int = 1) -> tuple[str, str, int]:
    """A new order with ``items`` items: (order id, customer id, last position)."""
    customer = f"cust-{uuid.uuid4().hex[:12]}"
    body = {"customer_id": customer, "currency": "EUR", "shipping_address": ADDRESS, "items": []}
    created = await client.post("/orders", json=body)
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    position = int(created.json()["position"])
    for n in range(items):
        added = await client.post(
            f"/orders/{order_id}/items",
            json={"sku": f"SKU-{n}", "quantity": 1, "unit_price": 500},
        )
        assert added.status_code == 200, added.text
        position = int(added.json()["position"])
    return order_id, customer, position


@contextlib.asynccontextmanager
async def running_projector(
    events: EventStore, documents: DocumentStore
) -> AsyncIterator[asyncio.Task[None]]:
    """The projector daemon (every projection) in a task, stopped gracefully on exit."""
    projections = list(all_projections())
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_daemon(
            events,
            documents,
            build_order_event_registry(),
            projections,
            event_types=subscription_event_types(projections),
            settings=FAST,
            stop=stop,
            refresh_s=0.05,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def by_name(statuses: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {status["name"]: status for status in statuses}
