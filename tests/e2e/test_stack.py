"""The whole system as ``make run`` starts it: embedded servers, API and projector as separate
processes under honcho, driven over HTTP, rebuilt while serving, stopped with Ctrl-C.

Against real servers (``EVENTSTORE_URI`` / ``MONGO_URI`` set) only the API and the projector
start, and the read models go to a database of the test's own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.e2e.stack import BIN, Stack, StackFactory
from tests.e2e.traffic import (
    Accepted,
    Traffic,
    accepted,
    new_order_body,
    projector_caught_up,
    read_own_write,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

REBUILD_TIMEOUT_S = 60.0
# honcho's documented exit code after Ctrl-C (its SIGINT handler); 0 if everything had exited.
CTRL_C_EXIT_CODES = (0, 130)
# What honcho reports per process: the shell it starts each command through, killed by the
# SIGTERM honcho sends (-15), or the command's own clean exit (0).
CLEAN_PROCESS_EXITS = {"0", "-15"}


@dataclass(frozen=True)
class Life:
    """An order driven through its whole life, and what it should look like now."""

    customer_id: str
    sku: str
    quantity: int
    unit_price: int
    last: Accepted

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


def check_runs_as_separate_processes(stack: Stack, projectors: int = 1) -> None:
    programs = {"orders-api": 1, "projector": projectors}
    programs |= {f"embedded-{name}": 1 for name in stack.embedded}
    for program, count in programs.items():
        running = stack.processes_named(program)
        assert len(running) == count, f"{program}: {running} in {stack.tree}"


def stop_cleanly(stack: Stack, projectors: tuple[str, ...] = ("projector",)) -> None:
    """Ctrl-C; honcho and every process of the stack exit, nothing needs SIGKILL."""
    code = stack.interrupt()
    survivors = stack.survivors()
    output = stack.output()
    assert code in CTRL_C_EXIT_CODES, f"run-stack exited with {code}"
    assert not survivors, f"still running after the stack stopped: {survivors}"
    assert "sending SIGKILL" not in output, "a process had to be killed"
    exits = dict(re.findall(r"^\S+ system +\| ([\w-]+)\.1 stopped \(rc=(-?\d+)\)$", output, re.M))
    expected = {"api", *projectors, *stack.embedded}
    assert set(exits) == expected, f"stopped: {exits}, expected {expected}"
    unclean = {name: rc for name, rc in exits.items() if rc not in CLEAN_PROCESS_EXITS}
    assert not unclean, f"exit codes: {unclean}"
    assert "Traceback" not in output


async def drive_order_life(api: httpx.AsyncClient) -> Life:
    """Create (idempotently), add items (one with If-Match), place, pay exactly, ship."""
    customer_id, sku, unit_price = unique("e2e-customer"), f"SKU-{uuid.uuid4().hex[:16]}", 1250
    body = new_order_body(customer_id, sku, 1, unit_price)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    created = accepted(await api.post("/orders", json=body, headers=key), 201)
    again = await api.post("/orders", json=body, headers=key)
    assert again.is_success, again.text
    assert again.json() == {
        "order_id": created.order_id,
        "version": created.version,
        "position": created.position,
    }, "a repeated Idempotency-Key must answer the original result"

    items = f"/orders/{created.order_id}/items"
    line = {"sku": sku, "quantity": 2, "unit_price": unit_price}
    added = accepted(await api.post(items, json=line, headers={"If-Match": created.etag}))
    assert added.version == created.version + 1
    outdated = await api.post(items, json=line, headers={"If-Match": created.etag})
    assert outdated.status_code == 412, outdated.text

    placed = accepted(await api.post(f"/orders/{created.order_id}/place"))
    view = await read_own_write(api, f"/orders/{created.order_id}", placed.position)
    assert (view["status"], view["total"]) == ("placed", 3 * unit_price)
    assert view["outstanding"] == view["total"]
    paid = accepted(
        await api.post(f"/orders/{created.order_id}/payments", json={"amount": view["outstanding"]})
    )
    shipment = {"carrier": "DHL", "tracking_number": "JD0146000062"}
    shipped = accepted(await api.post(f"/orders/{created.order_id}/ship", json=shipment))
    assert shipped.version == paid.version + 1 == placed.version + 2
    return Life(customer_id, sku, quantity=3, unit_price=unit_price, last=shipped)


async def check_read_models(api: httpx.AsyncClient, life: Life) -> None:
    """The order, the customer's summary and the daily sales all show the shipped order."""
    token = life.last.position
    view = await read_own_write(api, f"/orders/{life.last.order_id}", token)
    assert view["version"] == life.last.version
    assert view["status"] == "shipped"
    assert view["items"] == [
        {
            "sku": life.sku,
            "quantity": life.quantity,
            "unit_price": life.unit_price,
            "line_total": life.total,
        }
    ]
    assert (view["total"], view["amount_paid"], view["outstanding"]) == (life.total, life.total, 0)
    assert (view["carrier"], view["tracking_number"]) == ("DHL", "JD0146000062")

    summary = await read_own_write(api, f"/customers/{life.customer_id}/summary", token)
    assert summary["order_count"] == 1
    assert summary["open_orders"] == 0
    assert summary["orders_by_status"]["shipped"] == 1
    assert summary["lifetime_paid"] == {"EUR": life.total}

    today = datetime.now(UTC).date()  # a day either side: the test may straddle midnight
    days = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    sales = await read_own_write(api, "/reports/daily-sales", token, **days)
    ours = [s for s in sales["totals"]["skus"] if s["sku"] == life.sku]
    assert ours == [
        {"sku": life.sku, "currency": "EUR", "units": life.quantity, "revenue": life.total}
    ]
    assert sales["totals"]["orders_placed"] >= 1
    assert sales["totals"]["revenue"].get("EUR", 0) >= life.total


def projection_versions(body: Any) -> dict[str, int]:
    entries = body["projections"] if isinstance(body, dict) else body
    return {entry["name"]: int(entry["version"]) for entry in entries}


async def rebuild_while_serving(stack: Stack, api: httpx.AsyncClient, life: Life) -> None:
    """``rebuild-projection order_views`` while clients create orders and read them back."""
    traffic = Traffic(api, known=life.last)
    clients = [asyncio.create_task(traffic.run()) for _ in range(2)]
    try:
        await traffic.reached(4)
        rebuild = await asyncio.create_subprocess_exec(
            str(BIN / "rebuild-projection"),
            "order_views",
            env=stack.client_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            printed, _ = await asyncio.wait_for(rebuild.communicate(), REBUILD_TIMEOUT_S)
        except TimeoutError:
            rebuild.kill()
            await rebuild.wait()
            raise
        await traffic.reached(traffic.reads + 4)  # reads after the switch as well
    finally:
        traffic.stop()
        await asyncio.gather(*clients)
    output = printed.decode(errors="replace")
    assert rebuild.returncode == 0, f"rebuild-projection exited {rebuild.returncode}:\n{output}"
    assert not traffic.failures, "\n".join(traffic.failures)
    switched = re.search(r"order_views: switched from v(\d+) to v(\d+)", output)
    assert switched, output
    assert int(switched[2]) == int(switched[1]) + 1

    projections = await api.get("/projections")
    assert projections.status_code == 200, projections.text
    assert projection_versions(projections.json())["order_views"] == int(switched[2])

    newest = max(order.position for order in [life.last, *traffic.created])
    for order in [life.last, *traffic.created]:
        view = await read_own_write(api, f"/orders/{order.order_id}", newest)
        assert view["version"] == order.version


async def test_order_life_rebuild_while_serving_and_ctrl_c(stacks: StackFactory) -> None:
    stack = stacks()
    await stack.wait_ready()
    check_runs_as_separate_processes(stack)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30.0) as api:
        await projector_caught_up(api)
        life = await drive_order_life(api)
        await check_read_models(api, life)
        await rebuild_while_serving(stack, api, life)
    # What `make run` tells people to wait for (long printed by now: the API has served).
    assert f"orders-api ready on {stack.api_url}" in stack.output()
    stop_cleanly(stack)


async def test_orders_survive_a_restart_on_the_same_data_dir(stacks: StackFactory) -> None:
    first = stacks()
    await first.wait_ready()
    customer = unique("e2e-restart")
    async with httpx.AsyncClient(base_url=first.api_url, timeout=30.0) as api:
        await projector_caught_up(api)
        created = accepted(
            await api.post("/orders", json=new_order_body(customer, "SKU-KEPT", 2, 700)), 201
        )
        placed = accepted(await api.post(f"/orders/{created.order_id}/place"))
        await read_own_write(api, f"/orders/{created.order_id}", placed.position)
    stop_cleanly(first)

    second = stacks()
    await second.wait_ready()
    async with httpx.AsyncClient(base_url=second.api_url, timeout=30.0) as api:
        # No token: the read model itself was kept, not rebuilt after the restart.
        kept = await api.get(f"/orders/{created.order_id}")
        assert kept.status_code == 200, kept.text
        assert (kept.json()["version"], kept.json()["status"]) == (placed.version, "placed")
        # The event stream was kept too: a command pinned to the old version goes through.
        paid = accepted(
            await api.post(
                f"/orders/{created.order_id}/payments",
                json={"amount": 1400},
                headers={"If-Match": placed.etag},
            )
        )
        assert paid.version == placed.version + 1
        view = await read_own_write(api, f"/orders/{created.order_id}", paid.position)
        assert (view["status"], view["amount_paid"]) == ("paid", 1400)
    stop_cleanly(second)


async def test_two_projector_instances_share_the_projections(stacks: StackFactory) -> None:
    stack = stacks(PROJECTOR_INSTANCES="2")
    await stack.wait_ready()
    check_runs_as_separate_processes(stack, projectors=2)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30.0) as api:

        async def spread() -> dict[str, list[str]] | None:
            report = (await api.get("/projections")).json()
            leases = {i["instance_id"]: sorted(i["leases"]) for i in report["instances"]}
            owners = [s["owner"] for s in report["projections"]]
            shared = len(leases) == 2 and all(leases.values()) and None not in owners
            return leases if shared else None

        leases = await wait_until(spread, "both instances to hold leases", within_s=120)
        assert set(leases) == {"projector-1", "projector-2"}
        assert sorted(name for names in leases.values() for name in names) == sorted(
            ("order_views", "customer_summaries", "daily_sales")
        )
        await projector_caught_up(api)
        life = await drive_order_life(api)
        await check_read_models(api, life)
    stop_cleanly(stack, projectors=("projector-1", "projector-2"))


def test_a_bad_projector_instance_count_is_refused(tmp_path: Path) -> None:
    stack = Stack.configure(
        tmp_path / "data", tmp_path / "stack.log", extra_env={"PROJECTOR_INSTANCES": "many"}
    ).start()
    assert stack.process is not None
    assert stack.process.wait(30) == 2
    assert "PROJECTOR_INSTANCES must be a whole number from 1 to 9" in stack.output()
