"""Orders over HTTP for the end-to-end suite: request bodies, a checked command call, and
background traffic that creates orders and reads them back with their consistency tokens."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import unique
from tests.samples import ADDRESS
from tests.soak.http import ApiClient, Response

READ_OWN_WRITE_S = 60.0
WAIT_MS = 10_000  # the read side's maximum: a read may wait this long for its token


def new_order_body(customer_id: str, sku: str, quantity: int, unit_price: int) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "currency": "EUR",
        "shipping_address": ADDRESS,
        "items": [{"sku": sku, "quantity": quantity, "unit_price": unit_price}],
    }


@dataclass(frozen=True)
class Accepted:
    """What a successful command answered."""

    order_id: str
    version: int
    position: int

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def accepted(response: httpx.Response | Response, status: int = 200) -> Accepted:
    """The command's answer, checked: status, body, and the ETag / token headers agreeing."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    result = Accepted(str(body["order_id"]), int(body["version"]), int(body["position"]))
    assert response.headers["ETag"] == result.etag
    assert response.headers["X-Consistency-Token"] == str(result.position)
    return result


async def read_own_write(
    api: httpx.AsyncClient, path: str, token: int, **params: Any
) -> dict[str, Any]:
    """GET ``path`` with the consistency token until the answer is fresh; it must be a 200.

    One wait is bounded by the API (``wait_ms``); a machine busy enough to miss it asks again,
    up to ``READ_OWN_WRITE_S``, rather than fail on timing luck."""
    deadline = time.monotonic() + READ_OWN_WRITE_S
    while True:
        response = await api.get(
            path,
            params={"wait_ms": WAIT_MS, **params},
            headers={"X-Consistency-Token": str(token)},
        )
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        if response.headers.get("X-Read-Model-Stale") == "false":
            body: dict[str, Any] = response.json()
            return body
        assert time.monotonic() < deadline, f"{path} still stale: {response.text}"


async def projector_caught_up(api: httpx.AsyncClient | ApiClient, timeout_s: float = 120.0) -> None:
    """Wait until the projector has applied everything written so far (a probe order's token).

    Instant on a fresh stack; against a real event store full of history the projector of a
    new read-model database first has that history to catch up on."""
    probe = accepted(
        await api.post("/orders", json=new_order_body(unique("e2e-probe"), "SKU-PROBE", 1, 1)), 201
    )
    deadline = time.monotonic() + timeout_s
    while True:
        response = await api.get(
            f"/orders/{probe.order_id}",
            params={"wait_ms": WAIT_MS},
            headers={"X-Consistency-Token": str(probe.position)},
        )
        if response.headers.get("X-Read-Model-Stale") == "false":
            assert response.status_code == 200, response.text
            return
        assert time.monotonic() < deadline, f"the projector did not catch up in {timeout_s} s"


@dataclass
class Traffic:
    """Clients creating orders and reading them back (with tokens) until told to stop; every
    request that is not what it should be is recorded in ``failures``."""

    api: httpx.AsyncClient
    known: Accepted  # an order that exists before the traffic starts; read back every round
    created: list[Accepted] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    reads: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self) -> None:
        customer = unique("e2e-traffic")
        try:
            while not self._stop.is_set():
                body = new_order_body(customer, f"SKU-{uuid.uuid4().hex[:12]}", 1, 990)
                response = await self.api.post("/orders", json=body)
                if response.status_code != 201:
                    self._fail(response, "create")
                    continue
                order = accepted(response, 201)
                self.created.append(order)
                await self._read_back(order)
                await self._read_back(self.known)
        except Exception as error:  # a broken connection ends this client; the test sees why
            self.failures.append(f"traffic stopped: {type(error).__name__}: {error}")
            async with self._progress:
                self._progress.notify_all()

    async def _read_back(self, order: Accepted) -> None:
        response = await self.api.get(
            f"/orders/{order.order_id}",
            params={"wait_ms": WAIT_MS},
            headers={"X-Consistency-Token": str(order.position)},
        )
        if response.status_code != 200:
            self._fail(response, "read")
        elif response.headers.get("X-Read-Model-Stale") != "false":
            self._fail(response, "stale read")
        elif response.json().get("version", -1) < order.version:
            self._fail(response, f"read older than version {order.version}")
        async with self._progress:
            self.reads += 1
            self._progress.notify_all()

    def _fail(self, response: httpx.Response, what: str) -> None:
        self.failures.append(
            f"{what}: {response.request.method} {response.request.url} -> "
            f"{response.status_code} {dict(response.headers)} {response.text[:300]}"
        )

    async def reached(self, reads: int, timeout_s: float = 60.0) -> None:
        """Wait until ``reads`` reads were answered (or something failed)."""
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: self.reads >= reads or bool(self.failures)),
                timeout_s,
            )

    def stop(self) -> None:
        self._stop.set()
