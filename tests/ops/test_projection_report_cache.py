"""``/health/ready`` and ``/metrics`` read the projections through one report: a crowd of probes
and scrapes within an interval costs one reading, callers during a reading share it, an old
reading is replaced at the next call, a failed one is answered as before and retried after its
hold, and an operator's action makes the next probe read again.

Readings are counted by wrapping the facade function the report calls; time is a fake
monotonic clock the tests move, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from orders_api import projection_report
from orders_api.deps import get_projection_report
from orders_api.health import ProjectionLag
from orders_api.projection_report import FAILURE_HOLD_S, ProjectionReport
from projector.facade import projection_statuses
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import SubscriptionItem
from tests.fakes.document_store import DelegatingDocumentStore
from tests.fakes.event_store import InMemoryEventStore
from tests.ops.support import PROJECTION_NAMES, api, bearer, create_order, sample, samples
from tests.waiting import wait_until

TTL_S = 5.0
CROWD = 20  # of each: probes and scrapes
READY_KEYS = {"status", "checks", "projections", "projections_age_s", "warnings"}
GAUGES = (
    "orders_api_projection_version",
    "orders_api_projection_checkpoint_position",
    "orders_api_projection_head_position",
    "orders_api_projection_lag_events",
    "orders_api_projection_lag_seconds",
    "orders_api_projection_failed",
    "orders_api_projection_rebuilding",
    "orders_api_projection_dead_letters",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Readings:
    """Stands in for the facade's ``projection_statuses`` in the report: counts the calls and,
    while ``held``, keeps each one waiting at its start."""

    def __init__(self) -> None:
        self.count = 0
        self.waiting = 0
        self.held: asyncio.Event | None = None

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        if self.held is not None:
            self.waiting += 1
            try:
                await self.held.wait()
            finally:
                self.waiting -= 1
        return await projection_statuses(*args, **kwargs)


class CountedReport(ProjectionReport):
    """Counts the callers that asked it for a reading."""

    callers = 0

    async def read(self) -> projection_report.Reading:
        self.callers += 1
        return await super().read()


class CountingEvents(InMemoryEventStore):
    """Counts the subscriptions opened and the heads read."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions = 0
        self.heads = 0

    def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[SubscriptionItem]:
        self.subscriptions += 1
        return super().subscribe_all(after_position, event_types)

    async def head_position(self, event_types: Sequence[str]) -> int:
        self.heads += 1
        return await super().head_position(event_types)


class FlakyDocuments(DelegatingDocumentStore):
    """Reads fail while ``failing`` (pings still answer: the API stays ready)."""

    failing = False

    def before_read(self, collection: str) -> None:
        if self.failing:
            raise StoreUnavailable("mongodb", "reads refused by the test")


@pytest.fixture
def readings(monkeypatch: pytest.MonkeyPatch) -> Readings:
    counted = Readings()
    monkeypatch.setattr(projection_report, "projection_statuses", counted)
    return counted


@contextlib.asynccontextmanager
async def over(
    report: ProjectionReport,
    events: InMemoryEventStore,
    documents: DocumentStore,
    **settings: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API over the stores, its routes given ``report`` (built on a fake clock)."""

    async def given() -> ProjectionReport:
        return report

    try:
        async with api(events, documents, **settings) as (app, client):
            app.dependency_overrides[get_projection_report] = given
            yield client
    finally:
        await report.close()


def assert_ready_shape(body: dict[str, Any]) -> None:
    assert set(body) == READY_KEYS
    assert [lag["name"] for lag in body["projections"]] == PROJECTION_NAMES
    for lag in body["projections"]:
        assert set(lag) == set(ProjectionLag.model_fields)


def assert_metrics_shape(text: str) -> None:
    parsed = samples(text)
    assert sample(parsed, "orders_api_projection_status_ok") == 1
    for name in PROJECTION_NAMES:
        for gauge in GAUGES:
            assert sample(parsed, gauge, projection=name) is not None, (gauge, name)


async def test_a_crowd_of_probes_and_scrapes_reads_the_stores_once(
    document_store: MotorDocumentStore,
) -> None:
    # The app's own report, as the app factory builds it; the interval outlasts the test.
    events = CountingEvents()
    async with api(events, document_store, projection_report_ttl_s=300) as (_, client):
        await create_order(client, items=1)  # events pending: a reading subscribes
        await projection_statuses(document_store, events)
        one_reading = events.subscriptions, events.heads
        assert one_reading[0] >= 1
        events.subscriptions = events.heads = 0
        answers = await asyncio.gather(
            *(client.get("/health/ready") for _ in range(CROWD)),
            *(client.get("/metrics") for _ in range(CROWD)),
        )
        again = await asyncio.gather(client.get("/health/ready"), client.get("/metrics"))
    assert [answer.status_code for answer in (*answers, *again)] == [200] * (2 * CROWD + 2)
    assert (events.subscriptions, events.heads) == one_reading


async def test_callers_during_a_reading_share_it(
    document_store: MotorDocumentStore, readings: Readings
) -> None:
    events = CountingEvents()
    report = CountedReport(document_store, events, ttl_s=TTL_S, clock=FakeClock())
    async with over(report, events, document_store) as client:
        await create_order(client, items=1)
        readings.held = asyncio.Event()
        crowd = [
            asyncio.create_task(client.get(path))
            for path in ("/health/ready", "/metrics")
            for _ in range(CROWD)
        ]

        async def all_waiting() -> bool:
            return report.callers == 2 * CROWD and readings.waiting == 1

        await wait_until(all_waiting, "every caller waiting on the one reading")
        readings.held.set()
        answers = await asyncio.gather(*crowd)
    assert readings.count == 1
    assert [answer.status_code for answer in answers] == [200] * (2 * CROWD)
    ready, scraped = answers[:CROWD], answers[CROWD:]
    for answer in ready:
        assert_ready_shape(answer.json())
        assert answer.json()["projections"] == ready[0].json()["projections"]
    for answer in scraped:
        assert_metrics_shape(answer.text)


async def test_an_old_reading_is_replaced_at_the_next_call(
    document_store: MotorDocumentStore, readings: Readings
) -> None:
    clock = FakeClock()
    events = InMemoryEventStore()
    report = ProjectionReport(document_store, events, ttl_s=TTL_S, clock=clock)
    async with over(report, events, document_store) as client:
        first = (await client.get("/health/ready")).json()
        clock.advance(TTL_S - 0.5)
        later = (await client.get("/health/ready")).json()
        assert_metrics_shape((await client.get("/metrics")).text)
        assert readings.count == 1
        clock.advance(0.5)  # the reading is TTL_S old now
        assert_metrics_shape((await client.get("/metrics")).text)
        assert readings.count == 2
        fresh = (await client.get("/health/ready")).json()
    assert readings.count == 2
    assert (first["projections_age_s"], later["projections_age_s"]) == (0.0, TTL_S - 0.5)
    assert fresh["projections_age_s"] == 0.0
    for body in (first, later, fresh):
        assert body["status"] == "ready"
        assert_ready_shape(body)


async def test_a_failed_reading_is_answered_as_before_and_retried_after_its_hold(
    document_store: MotorDocumentStore, readings: Readings
) -> None:
    clock = FakeClock()
    documents = FlakyDocuments(document_store)
    events = InMemoryEventStore()
    report = ProjectionReport(documents, events, ttl_s=TTL_S, clock=clock)
    async with over(report, events, documents) as client:
        documents.failing = True
        failed = await client.get("/health/ready")
        scraped = await client.get("/metrics")
        assert readings.count == 1  # the scrape was told of the failure without reading again
        documents.failing = False
        clock.advance(FAILURE_HOLD_S - 0.25)
        held = await client.get("/health/ready")
        assert readings.count == 1
        clock.advance(0.25)
        recovered = await client.get("/health/ready")
        rescraped = await client.get("/metrics")
    assert readings.count == 2
    assert failed.status_code == held.status_code == 200
    for body in (failed.json(), held.json()):
        assert body["status"] == "degraded"
        assert body["checks"] == {"eventstore": "ok", "mongodb": "ok"}
        assert body["projections"] is None and body["projections_age_s"] is None
        [warning] = body["warnings"]
        assert warning.startswith("projection status unavailable: ")
        assert "reads refused by the test" in warning
    assert scraped.status_code == 200
    assert sample(samples(scraped.text), "orders_api_projection_status_ok") == 0
    assert recovered.json()["status"] == "ready"
    assert_ready_shape(recovered.json())
    assert_metrics_shape(rescraped.text)


async def test_a_reading_that_does_not_answer_in_time_is_not_waited_for_again(
    document_store: MotorDocumentStore, readings: Readings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projection_report, "READ_TIMEOUT_S", 0.05)
    clock = FakeClock()
    events = InMemoryEventStore()
    report = ProjectionReport(document_store, events, ttl_s=TTL_S, clock=clock)
    async with over(report, events, document_store) as client:
        readings.held = asyncio.Event()  # never set: this reading never answers
        timed_out = (await client.get("/health/ready")).json()
        scraped = samples((await client.get("/metrics")).text)
        assert readings.count == 1
        readings.held = None
        clock.advance(FAILURE_HOLD_S)
        recovered = (await client.get("/health/ready")).json()
    assert readings.count == 2
    assert timed_out["status"] == "degraded" and timed_out["projections"] is None
    assert timed_out["warnings"] == ["projection status not read within 0.05s"]
    assert sample(scraped, "orders_api_projection_status_ok") == 0
    assert recovered["status"] == "ready"


async def test_only_an_operators_action_makes_the_next_probe_read_again(
    document_store: MotorDocumentStore, readings: Readings, admin_token: str
) -> None:
    events = InMemoryEventStore()
    report = ProjectionReport(document_store, events, ttl_s=TTL_S, clock=FakeClock())
    auth = bearer(admin_token)
    async with over(report, events, document_store, admin_token=admin_token) as client:
        await client.get("/health/ready")
        refused = [
            await client.post("/admin/projections/order_views/dead-letters/park"),
            await client.post("/admin/projections/order_views/rebuild", headers=bearer("x" * 20)),
            await client.post("/admin/projections/order_views/dead-letters/park", headers=auth),
            await client.get("/admin/dead-letters", headers=auth),
        ]
        await client.get("/health/ready")
        assert readings.count == 1
        started = await client.post("/admin/projections/order_views/rebuild", headers=auth)
        await client.get("/health/ready")
    assert [answer.status_code for answer in refused] == [401, 401, 409, 200]
    assert started.status_code == 202, started.text
    assert readings.count == 2
