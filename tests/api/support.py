"""Helpers of the API tests: request bodies, an in-process client, and reading what was stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from shared.contract.order_events import order_stream
from shared.ports.event_store import EventStore, RecordedEvent, StreamNotFound
from tests.samples import ADDRESS


def new_order(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": f"cust-{uuid.uuid4().hex[:12]}",
        "currency": "EUR",
        "shipping_address": ADDRESS,
        "items": [],
    }
    return {**body, **changes}


def new_key() -> str:
    return str(uuid.uuid4())


@asynccontextmanager
async def serve(
    app: FastAPI, seen: list[httpx.Response], timeout_s: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in-process; every response is
    read and recorded in ``seen``."""

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(response)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://orders.test",
            event_hooks={"response": [record]},
            timeout=timeout_s,
        ) as client,
    ):
        yield client


async def create(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/orders", json=new_order(**changes))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stream_of(store: EventStore, order_id: str) -> list[RecordedEvent]:
    try:
        return await store.read_stream(order_stream(uuid.UUID(order_id)))
    except StreamNotFound:
        return []


def data(event: RecordedEvent) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(event.data)
    return loaded


def metadata(event: RecordedEvent) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(event.metadata)
    return loaded
