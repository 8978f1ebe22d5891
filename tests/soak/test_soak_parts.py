"""The soak harness's own pieces, fast and exact: the fault schedule, how reads with a token are
counted (stale 404s, phases), which leases a stopped instance left behind, how a lease
changing hands is timed from the documents (acquired, then fed under another token), and the
steady mode's parts: no faults planned, the clients' pacer, the figures per window (answer
times, CPU from /proc, the lag trend) and the command line."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from benchmarks.soak import MAX_CLIENTS, plan_of
from projector.leases import LEASES, LeaseDocument
from shared.contract.read_models import CHECKPOINTS, FENCE_FIELD, collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore, UpdateOne
from tests.soak.clients import Pacer
from tests.soak.faults import (
    Faults,
    Takeovers,
    left_behind,
    saved_under_another_token,
    schedule,
)
from tests.soak.harness import SoakPlan
from tests.soak.record import COMMAND, PLAIN_GET, STEADY, TOKEN_GET, Ack, Record
from tests.soak.stack import SoakStack, instance_names
from tests.soak.windows import (
    LAG_FLOOR_EVENTS,
    MONGO_OPS,
    Lag,
    MongoOps,
    WindowFigures,
    keeps_up,
    lag_trend,
    machine_ticks,
    percentiles,
    process_ticks,
    schedstat_wait_ns,
    window_lines,
)
from tests.waiting import wait_until


@pytest.mark.parametrize(
    ("kills", "catch_ups", "rolling"), [(0, 0, 0), (4, 1, 1), (25, 3, 3), (1, 0, 2)]
)
def test_the_schedule_holds_every_fault_planned(kills: int, catch_ups: int, rolling: int) -> None:
    planned = {"projector": kills, "catch-up": catch_ups, "rolling": rolling}
    stores = {"eventstore": 1, "mongo-term": 1, "mongo-kill": 1}
    assert Counter(schedule(kills, catch_ups, rolling)) == Counter(
        {fault: count for fault, count in (planned | stores).items() if count}
    )


def answer(status: int, stale: str, version: int = 3) -> httpx.Response:
    request = httpx.Request("GET", "http://api/orders/o-1")
    body = {"order_id": "o-1", "version": version} if status == 200 else {"title": "not found"}
    return httpx.Response(status, json=body, headers={"X-Read-Model-Stale": stale}, request=request)


def test_a_stale_404_counts_as_a_stale_read_and_a_fresh_one_is_a_violation() -> None:
    record, order = Record(), Ack("create", "o-1", version=3, position=100)
    assert not record.token_read("get-order-token", answer(404, "true"), order)
    assert record.token_reads == Counter(stale=1) and not record.violations
    assert not record.token_read("get-order-token", answer(404, "false"), order)
    assert record.token_reads == Counter(stale=1, fresh=1)
    assert record.violations == ["get-order-token: fresh 404 for acknowledged order o-1"]
    assert record.token_read("get-order-token", answer(200, "false", version=3), order)
    record.token_read("get-order-token", answer(200, "false", version=2), order)
    assert len(record.violations) == 2 and "shows version 2" in record.violations[1]


def test_reads_are_counted_by_the_phase_they_were_answered_in() -> None:
    record = Record()
    record.token_read("daily-sales-token", answer(200, "false"), None)
    record.enter("rolling restart")
    record.token_read("daily-sales-token", answer(200, "true"), None)
    record.token_read("daily-sales-token", answer(200, "false"), None)
    record.enter(None)
    assert record.stale_share() == (1, 3)
    assert record.stale_share(STEADY) == (0, 1)
    assert record.stale_share("rolling restart") == (1, 2)
    assert set(record.phase_seconds) == {STEADY, "rolling restart"}
    spent = dict(record.phase_seconds)
    record.enter(None)  # the traffic is over: no more time counted
    assert record.phase_seconds == spent


def test_a_stopped_instance_leaves_live_and_expired_leases_told_apart() -> None:
    now = utc_now()
    found = {
        "order_views": LeaseDocument("order_views", "p-1-1", 7, now + timedelta(seconds=5)),
        "customer_summaries": LeaseDocument("customer_summaries", "p-1-1", 8, now),
        "daily_sales": LeaseDocument("daily_sales", "p-2-1", 9, now + timedelta(seconds=5)),
    }
    assert left_behind(found, "p-1-1") == (
        ["order_views by p-1-1"],
        ["customer_summaries by p-1-1"],
    )
    assert left_behind(found, "p-3-1") == ([], [])


def test_instance_names_need_at_least_one() -> None:
    assert instance_names(2) == ("projector-1", "projector-2")
    with pytest.raises(ValueError, match="at least one"):
        instance_names(0)


async def test_a_takeover_is_timed_by_the_new_acquired_at_then_the_first_save_under_its_token(
    document_store: DocumentStore, tmp_path: Path
) -> None:
    stack = SoakStack(tmp_path / "data", tmp_path / "logs", projectors=2)  # never started
    faults, into = Faults(stack, document_store, Record()), Takeovers()
    name, checkpoint_id = "order_views", collection_name("order_views", 1)
    now = utc_now()
    since = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as MongoDB stores it
    former = LeaseDocument(name, "projector-1-1", 7, since + timedelta(seconds=2), since)
    lease = {"owner": former.owner, "token": 7, "expires_at": former.expires_at}
    await document_store.bulk_write(
        LEASES, [UpdateOne({"_id": name}, {"$set": lease}, upsert=True)]
    )
    saved = {"position": 10, FENCE_FIELD: 7, "updated_at": since + timedelta(seconds=0.1)}
    await document_store.bulk_write(
        CHECKPOINTS, [UpdateOne({"_id": checkpoint_id}, {"$set": saved}, upsert=True)]
    )
    timing = asyncio.create_task(faults.taken_over(former.owner or "", {name: former}, since, into))
    taken = {
        "owner": "projector-2-1",
        "token": 8,
        "expires_at": since + timedelta(seconds=4),
        "acquired_at": since + timedelta(seconds=1.5),
    }
    await document_store.bulk_write(LEASES, [UpdateOne({"_id": name}, {"$set": taken})])

    async def acquired() -> bool:
        return bool(into.acquired)

    await wait_until(acquired, "the takeover to be timed")
    assert into.acquired == [1.5] and not into.fed and not timing.done()
    # The new owner stamps its token; the former owner's last save is older than the takeover.
    stamped = {FENCE_FIELD: 8, "updated_at": since + timedelta(seconds=1)}
    await document_store.bulk_write(
        CHECKPOINTS, [UpdateOne({"_id": checkpoint_id}, {"$set": stamped})]
    )
    taken_at = since + timedelta(seconds=1.5)
    assert await saved_under_another_token(document_store, name, 7, taken_at) is None
    fed = {"position": 20, FENCE_FIELD: 8, "updated_at": since + timedelta(seconds=2.25)}
    await document_store.bulk_write(CHECKPOINTS, [UpdateOne({"_id": checkpoint_id}, {"$set": fed})])
    assert await saved_under_another_token(document_store, name, 7, taken_at) == fed["updated_at"]
    assert await saved_under_another_token(document_store, name, 8, taken_at) is None
    await asyncio.wait_for(timing, 30)
    assert into == Takeovers(acquired=[1.5], fed=[2.25])
    assert not faults.findings


def test_a_steady_plan_has_no_fault_at_all() -> None:
    steady = SoakPlan(
        seconds=60, projector_kills=0, catch_up_kills=0, rolling_restarts=0, store_restarts=False
    )
    assert steady.faults == []
    assert schedule(2, 0, 0, store_restarts=False) == ["projector", "projector"]
    assert SoakPlan(seconds=60, projector_kills=0, catch_up_kills=0).faults == [
        "eventstore",
        "mongo-term",
        "mongo-kill",
    ]


def test_the_command_line_steady_mode_plans_no_faults_and_windows_of_30_s() -> None:
    plan, keep = plan_of(["--steady", "--duration", "90", "--projectors", "2", "--rate", "50"])
    assert plan.faults == [] and keep is None
    assert (plan.rate, plan.window_s, plan.projectors) == (50, 30, 2)
    faulty, _ = plan_of(["--duration", "90"])
    assert (faulty.projector_kills, faulty.catch_up_kills, faulty.rolling_restarts) == (25, 3, 3)
    assert faulty.store_restarts and faulty.rate is None and faulty.window_s is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--steady", "--projector-kills", "3"],
        ["--steady", "--rolling-restarts", "1"],
        ["--rate", "0"],
        ["--window", "0"],
        ["--duration", "60", "--window", "61"],
        ["--clients", str(MAX_CLIENTS + 1)],
        ["--clients", "4", "--hot-clients", "3"],
    ],
)
def test_the_command_line_refuses_what_makes_no_sense(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        plan_of(argv)
    assert exited.value.code == 2 and "error:" in capsys.readouterr().err


def test_the_pacer_hands_out_rate_tokens_a_second_after_a_burst() -> None:
    pacer = Pacer(rate=10)
    assert [pacer.reserve(now=100.0) for _ in range(4)] == pytest.approx([0, 0.1, 0.2, 0.3])
    # Taken later, the next slots are nearer; idle time saves up no more than the burst.
    assert pacer.reserve(now=100.35) == pytest.approx(0.05)
    assert [pacer.reserve(now=200.0) for _ in range(2)] == pytest.approx([0, 0.1])
    bursty = Pacer(rate=4, burst=3)
    assert [bursty.reserve(now=0.0) for _ in range(5)] == pytest.approx([0, 0, 0, 0.25, 0.5])
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate=0)
    with pytest.raises(ValueError, match="burst"):
        Pacer(rate=1, burst=0.5)


def api_answering(status: int = 201) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={}, headers={"X-Read-Model-Stale": "true"})
        body = {"order_id": "o-1", "version": 0, "position": 42}
        return httpx.Response(
            status, json=body, headers={"ETag": '"0"', "X-Consistency-Token": "42"}
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://api")


async def test_a_window_counts_its_acks_token_reads_and_answer_times() -> None:
    record = Record()
    async with api_answering() as api:
        await record.send(api, "create", "POST", "/orders", key="k-1", body={})
        token = {"X-Consistency-Token": "42"}
        response = await record.get(api, "get-order-token", "/orders/o-1", headers=token)
        assert response is not None
        record.token_read("get-order-token", response, None)
        await record.get(api, "get-order", "/orders/o-1")
        first = record.take_window()
        await record.send(api, "create", "POST", "/orders", key="k-2", body={})
    assert first.acks == 1 and first.token_reads == Counter(stale=1)
    assert {kind: len(times) for kind, times in first.seconds.items()} == {
        COMMAND: 1,
        TOKEN_GET: 1,
        PLAIN_GET: 1,
    }
    assert record.window.acks == 1 and not record.window.token_reads
    assert len(record.acks) == 2 and record.token_reads == Counter(stale=1)


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([]) is None
    assert percentiles([0.3]) == (0.3, 0.3)
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unordered
    assert percentiles(values) == (50.0, 99.0)
    assert percentiles([1.0, 2.0, 3.0, 4.0]) == (2.0, 4.0)


def test_cpu_ticks_are_read_from_proc_even_with_odd_command_names() -> None:
    # pid (comm) state ppid ... utime (14th) stime (15th) ...
    rest = "S 1 1 1 0 -1 4194560 100 0 0 0 1234 56 7 8 20 0 3 0 999 0 0"
    assert process_ticks(f"4242 (my (odd) proc) {rest}") == 1234 + 56
    assert process_ticks(Path("/proc/self/stat").read_text()) >= 0
    stat = "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 50 2 25 400 10 1 1 5 0 0\n"
    assert machine_ticks(stat) == (100 + 5 + 50 + 3 + 2 + 10, 990)
    with pytest.raises(ValueError, match="cpu line"):
        machine_ticks("intr 0\n")
    assert schedstat_wait_ns("284364 1192723 3\n") == 1192723


def lags(*events: int) -> list[Lag | None]:
    return [Lag(count, True, 0.0) for count in events]


def test_a_lag_growing_in_every_window_past_the_floor_is_falling_behind() -> None:
    floor = LAG_FLOOR_EVENTS
    assert lag_trend(lags(floor, 3 * floor, 9 * floor)) == "growing"
    assert lag_trend(lags(floor, 3 * floor, 2 * floor)) == "bounded"  # it came back down
    assert lag_trend(lags(0, 5, floor)) == "bounded"  # rising, but within a batch or two
    assert lag_trend(lags(150, 160, 150 + floor)) == "bounded"
    assert lag_trend(lags(150, 160, 151 + floor)) == "growing"
    assert lag_trend([None, *lags(floor)]) == "unknown"


def window(stale: int, reads: int, lag: int) -> WindowFigures:
    return WindowFigures(
        seconds=30.0,
        commands=3000,
        queries=4500,
        stale=stale,
        token_reads=reads,
        token_get_s=(0.01, 0.2),
        plain_get_s=(0.005, 0.05),
        command_s=None,
        lag=Lag(lag, True, 0.1),
        cpu={"api": 80.0, "machine": 190.0},
        cpu_wait={"api": 12.0},
        load=(3.1, 2.0, 1.0),
        mongo_ops={"query": 250.0, "update": 40.4, "insert": 0.0, "getmore": 0.0, "command": 9.6},
    )


def test_a_projector_keeps_up_with_its_lag_bounded_and_under_1_percent_stale() -> None:
    assert keeps_up([window(0, 500, 10), window(4, 500, 20)])
    assert not keeps_up([window(0, 500, 10), window(5, 500, 20)])  # 1 % stale
    assert not keeps_up([window(0, 500, 200), window(0, 500, 900)])  # falling behind
    assert not keeps_up([])
    assert not keeps_up([window(0, 500, 10)])  # one window shows no trend
    lines = window_lines([window(4, 500, 20), window(0, 400, 5)], ["api", "mongo"])
    assert lines[2] == (
        "0-30 s | 100.0 | 150.0 | 4/500 (0.8 %) | 10 / 200 | 5 / 50 | - | 20 ev / 0.1 s | "
        "80+12 ? ? 110 190 | 3.10 2.00 1.00 | 250 40 0 0 10"
    )
    assert lines[3].startswith("30-60 s | 100.0 | 150.0 | 0/400 (0.0 %)")
    assert lines[-1] == (
        "lag trend: bounded; worst window stale 0.8 %; commands/s 100.0 mean; "
        "projector keeps up: yes"
    )


async def test_mongo_operations_are_counted_a_second_between_samples(
    mongo_uri: str, document_store: DocumentStore
) -> None:
    ops = MongoOps(mongo_uri)
    try:
        assert await ops.sample(0.0) == {}  # the baseline
        for _ in range(3):
            await document_store.find(CHECKPOINTS, {"_id": "none"}, limit=1)
        rates = await ops.sample(2.0)
    finally:
        ops.close()
    assert set(rates) == set(MONGO_OPS)
    assert rates["query"] >= 1.5  # three finds in "two seconds" (the session may add others)
    unreachable = MongoOps("mongodb://127.0.0.1:1/", timeout_ms=100)
    assert await unreachable.sample(1.0) == {}
    unreachable.close()
