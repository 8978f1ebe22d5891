"""The soak harness's own pieces, fast and exact: the fault schedule, how reads with a token are
counted (stale 404s, phases), which leases a stopped instance left behind, and how a lease
changing hands is timed from the documents (acquired, then fed under another token)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from projector.leases import LEASES, LeaseDocument
from shared.contract.read_models import CHECKPOINTS, FENCE_FIELD, collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore, UpdateOne
from tests.soak.faults import (
    Faults,
    Takeovers,
    left_behind,
    saved_under_another_token,
    schedule,
)
from tests.soak.record import STEADY, Ack, Record
from tests.soak.stack import SoakStack, instance_names
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
