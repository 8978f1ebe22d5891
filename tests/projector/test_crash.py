"""The projector as a process: kill -9 during a catch-up, SIGTERM, and nothing lost or doubled."""

from __future__ import annotations

import random
import signal
import subprocess
from typing import Any

import pytest

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.read_models import resolve_active
from shared.ports.document_store import DocumentStore
from tests.conftest import unique
from tests.projector.processes import projector_env, start_projector
from tests.projector.support import (
    Order,
    append_orders,
    checkpoint,
    random_day,
    running_daemon,
    wait_for_position,
)
from tests.waiting import wait_until

NAMES = ("order_views", "customer_summaries", "daily_sales")


@pytest.fixture
def eventstore_uri(fresh_eventstore_uri: str) -> str:
    """A log holding only this test's events, so the catch-up is exactly what it seeds."""
    return fresh_eventstore_uri


async def lowest_checkpoint(store: DocumentStore) -> int:
    positions = []
    for name in NAMES:
        record = await checkpoint(store, name)
        positions.append(record.position if record else 0)
    return min(positions)


async def snapshot(
    store: DocumentStore, orders: list[Order], customers: set[str], day: str
) -> dict[str, Any]:
    """This test's documents of every read model, by id."""
    views = await resolve_active(store, "order_views")
    summaries = await resolve_active(store, "customer_summaries")
    sales = await resolve_active(store, "daily_sales")
    ids = [str(o.order_id) for o in orders]
    return {
        "order_views": {
            d["_id"]: d for d in await store.find(views.collection, {"_id": {"$in": ids}})
        },
        "customer_summaries": {
            d["_id"]: d
            for d in await store.find(summaries.collection, {"_id": {"$in": sorted(customers)}})
        },
        "daily_sales": await store.find_one(sales.collection, {"_id": day}),
    }


def kill_9(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


async def crash_repeatedly(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    env: dict[str, str],
    *,
    orders: int,
    extra_items: int,
    kills: int,
    clean_database: str,
    mongo_uri: str,
) -> None:
    customers = [unique("customer") for _ in range(max(orders // 10, 1))]
    script = [
        Order(random.choice(customers), "shipped", extra_items=extra_items) for _ in range(orders)
    ]
    for order in random.sample(script, len(script) // 4):
        order.ending = random.choice(["draft", "paid", "cancelled"])
    day = random_day()
    last = await append_orders(event_store, script, day, per_append=5)
    positions = sorted(
        [e.position for o in script for e in await event_store.read_stream(o.stream)]
    )
    # Kill once the projector got past random points of the catch-up (not after fixed times).
    marks = sorted(random.sample(positions[len(positions) // 20 : -len(positions) // 20], kills))
    dirty = 0
    for mark in marks:
        process = start_projector(env)
        try:

            async def past(mark: int = mark) -> bool:
                return await lowest_checkpoint(document_store) >= mark

            await wait_until(past, f"the projector to pass position {mark}", within_s=60)
        finally:
            kill_9(process)
        assert process.returncode == -signal.SIGKILL
        record = await checkpoint(document_store, "order_views")
        assert record is not None
        views = await resolve_active(document_store, "order_views")
        ahead = await document_store.find(views.collection, {"_position": {"$gt": record.position}})
        dirty += bool(ahead)  # killed between writing documents and saving the checkpoint

    process = start_projector(env)
    try:
        await wait_for_position(document_store, last, NAMES, within_s=120)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    crashed = await snapshot(document_store, script, set(customers), day.date().isoformat())

    clean = MotorDocumentStore(mongo_uri, clean_database)
    try:
        async with running_daemon(event_store, clean):
            await wait_for_position(clean, last, NAMES, within_s=120)
        rebuilt = await snapshot(clean, script, set(customers), day.date().isoformat())
    finally:
        for collection in await clean.list_collections():
            await clean.drop_collection(collection)
        await clean.close()

    assert len(crashed["order_views"]) == len(script)
    assert crashed == rebuilt
    print(f"{kills} kills, {dirty} between documents and checkpoint")


async def test_kill_9_during_a_catch_up_then_the_read_model_equals_a_clean_rebuild(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    env = projector_env(
        eventstore_uri,
        mongo_uri,
        mongo_database_name,
        PROJECTOR_BATCH_SIZE="50",
        PROJECTOR_BATCH_MS="20",
    )
    await crash_repeatedly(
        event_store,
        document_store,
        env,
        orders=200,
        extra_items=4,  # 15 events per shipped order: ~3000 events over 200 streams
        kills=5,
        clean_database=unique("clean").replace("-", "_")[:60],
        mongo_uri=mongo_uri,
    )


@pytest.mark.soak
async def test_soak_many_kills_during_a_long_catch_up(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    env = projector_env(eventstore_uri, mongo_uri, mongo_database_name)
    await crash_repeatedly(
        event_store,
        document_store,
        env,
        orders=1500,
        extra_items=4,
        kills=20,
        clean_database=unique("clean").replace("-", "_")[:60],
        mongo_uri=mongo_uri,
    )


async def test_sigterm_finishes_the_batch_saves_checkpoints_and_exits_0(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    script = [Order(unique("customer"), extra_items=2) for _ in range(60)]
    last = await append_orders(event_store, script, random_day(), per_append=4)
    env = projector_env(eventstore_uri, mongo_uri, mongo_database_name, PROJECTOR_BATCH_SIZE="20")
    process = start_projector(env)
    try:

        async def started() -> bool:
            record = await checkpoint(document_store, "order_views")
            return record is not None and record.position > 0

        await wait_until(started, "the projector to save a checkpoint")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output

    for name in NAMES:
        record = await checkpoint(document_store, name)
        assert record is not None and record.state == "stopped"
        active = await resolve_active(document_store, name)
        ahead = await document_store.find(
            active.collection, {"_position": {"$gt": record.position}}
        )
        assert ahead == [], f"{name}: documents written past the saved checkpoint"
    stopped_at = await lowest_checkpoint(document_store)
    assert stopped_at < last, "stopped after the catch-up; the test proves nothing"
