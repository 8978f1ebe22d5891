"""Soak traffic: clients driving orders through their lives, and queries, until told to stop.

- ``order_lives``: one client, one order at a time, none shared: create (with items), add and
  remove items (some pinned with ``If-Match``), then place, pay exactly the outstanding amount,
  ship or cancel (a few stay drafts or are cancelled as drafts). Every command has its own
  ``Idempotency-Key``; a non-2xx answer other than the retry policy's ends that order's life.
- ``hot_orders``: several clients on the same order: they create it with the same key (the same
  order, idempotently), add items concurrently, and all try to place, pay and ship it; 409 and
  412 answers are expected there.
- between commands, queries with and without ``X-Consistency-Token``: the order, the customer's
  orders and summary, the daily sales.

With a ``Pacer`` (one shared by all clients of a run) every new command waits for a token of
its bucket first, so the clients together offer at most ``Pacer.rate`` commands/s (retries of a
command are not paced again); without one each client sends its next request at once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.traffic import new_order_body
from tests.soak.http import ApiClient, Response
from tests.soak.record import Ack, Record

TOKEN_WAIT_MS = 250  # reads with a token wait this long for the projector (it may be down)
EXPECTED_ON_HOT = {409, 412}
SHIPMENT = {"carrier": "DHL", "tracking_number": "JD0146000062"}


def key() -> str:
    return uuid.uuid4().hex


@dataclass
class Pacer:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` of them saved up.

    Virtual scheduling (GCRA): every token taken reserves the next slot ``1 / rate`` after the
    previous one, never earlier than a full bucket allows; ``reserve`` is that arithmetic,
    ``acquire`` waits for the slot it reserved."""

    rate: float
    burst: float = 1.0
    next_at: float | None = None  # the next free slot (time.monotonic)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"a pacing rate must be above 0 per second, not {self.rate}")
        if not self.burst >= 1:
            raise ValueError(f"a burst must hold at least one token, not {self.burst}")

    def reserve(self, now: float) -> float:
        """Take the next token at ``now``: how many seconds until it is there."""
        interval = 1 / self.rate
        earliest = now - (self.burst - 1) * interval  # with a full bucket
        slot = earliest if self.next_at is None else max(self.next_at, earliest)
        self.next_at = slot + interval
        return max(0.0, slot - now)

    async def acquire(self) -> None:
        delay = self.reserve(time.monotonic())
        if delay:
            await asyncio.sleep(delay)  # pacing: the wait is the point


@dataclass
class Order:
    """What one client knows about an order it drives."""

    order_id: str
    customer_id: str
    items: dict[str, tuple[int, int]] = field(default_factory=dict)  # sku -> (quantity, price)
    last: Ack | None = None

    @property
    def total(self) -> int:
        return sum(quantity * price for quantity, price in self.items.values())


@dataclass
class Client:
    api: ApiClient
    record: Record
    customers: list[str]
    number: int
    rng: random.Random = field(default_factory=random.Random)
    pacer: Pacer | None = None  # shared by the clients of a run; None: unpaced
    token_wait_ms: int = TOKEN_WAIT_MS  # the ``wait_ms`` of its reads with a token

    def sku(self) -> str:
        return f"SKU-{self.number}-{self.rng.getrandbits(64):016x}"

    async def send(
        self, label: str, method: str, path: str, *, key: str, **kwargs: Any
    ) -> Response | None:
        """A new command (paced), under the record's retry policy."""
        if self.pacer is not None:
            await self.pacer.acquire()
        return await self.record.send(self.api, label, method, path, key=key, **kwargs)

    async def command(
        self, order: Order, label: str, method: str, path: str, **kwargs: Any
    ) -> Response | None:
        response = await self.send(label, method, path, key=key(), **kwargs)
        if response is not None and response.is_success:
            order.last = self.record.acks[-1]
        return response

    def expected(self, response: Response | None, label: str, allowed: set[int]) -> bool:
        """Whether to carry on with this order; an answer outside ``allowed`` is a finding."""
        if response is None:
            return False
        if response.is_success:
            return True
        if response.status_code not in allowed and response.status_code < 500:
            self.record.violation(f"{label}: {response.status_code} {response.text[:300]}")
        return False

    async def order_life(self, first_items: int = 2) -> None:
        customer = self.rng.choice(self.customers)
        price = self.rng.choice([99, 250, 1250, 4999])
        body = new_order_body(customer, self.sku(), self.rng.randint(1, 3), price)
        body["items"] += [
            {"sku": self.sku(), "quantity": 1, "unit_price": price} for _ in range(first_items - 1)
        ]
        created = await self.send("create", "POST", "/orders", key=key(), body=body)
        if not self.expected(created, "create", set()):
            return
        assert created is not None
        order = Order(str(created.json()["order_id"]), customer, last=self.record.acks[-1])
        order.items = {i["sku"]: (i["quantity"], i["unit_price"]) for i in body["items"]}
        await self.queries(order)
        base = f"/orders/{order.order_id}"
        for _ in range(self.rng.randint(0, 3)):
            if order.items and self.rng.random() < 0.3:
                sku = self.rng.choice(sorted(order.items))
                response = await self.command(order, "remove-item", "DELETE", f"{base}/items/{sku}")
                order.items.pop(sku, None)
            else:
                sku, quantity = self.sku(), self.rng.randint(1, 5)
                line = {"sku": sku, "quantity": quantity, "unit_price": price}
                pin = order.last.version if order.last and self.rng.random() < 0.5 else None
                response = await self.command(
                    order, "add-item", "POST", f"{base}/items", body=line, if_match=pin
                )
                order.items[sku] = (quantity, price)
            if not self.expected(response, "item", set()):
                return
        ending = self.rng.random()
        if ending < 0.08 or not order.items:
            await self.queries(order)  # stays a draft
            return
        if ending < 0.16:
            cancelled = await self.command(
                order, "cancel", "POST", f"{base}/cancel", body={"reason": "changed mind"}
            )
            self.expected(cancelled, "cancel draft", set())
            return
        placed = await self.command(order, "place", "POST", f"{base}/place")
        if not self.expected(placed, "place", set()):
            return
        await self.read_order(order)
        paid = await self.command(
            order, "pay", "POST", f"{base}/payments", body={"amount": order.total}
        )
        if not self.expected(paid, "pay", set()):
            return
        if self.rng.random() < 0.8:
            done = await self.command(order, "ship", "POST", f"{base}/ship", body=SHIPMENT)
        else:
            done = await self.command(
                order, "cancel", "POST", f"{base}/cancel", body={"reason": "out of stock"}
            )
        self.expected(done, "ship/cancel", set())
        await self.queries(order)

    async def read_order(self, order: Order) -> dict[str, Any] | None:
        """GET the order with the token of its last command; its body when fresh."""
        assert order.last is not None
        response = await self.record.get(
            self.api,
            "get-order-token",
            f"/orders/{order.order_id}",
            params={"wait_ms": self.token_wait_ms},
            headers={"X-Consistency-Token": str(order.last.position)},
        )
        if response is None:
            return None
        if self.record.token_read("get-order-token", response, order.last):
            view: dict[str, Any] = response.json()
            return view
        return None

    async def queries(self, order: Order) -> None:
        """One of the read side's queries, with or without the order's token."""
        assert order.last is not None
        choice = self.rng.randrange(5)
        if choice == 0:
            await self.read_order(order)
            return
        token = {"X-Consistency-Token": str(order.last.position)} if self.rng.random() < 0.5 else {}
        params: dict[str, Any] = {"wait_ms": self.token_wait_ms} if token else {}
        today = datetime.now(UTC).date()
        label, path = [
            ("get-order", f"/orders/{order.order_id}"),
            ("customer-orders", f"/customers/{order.customer_id}/orders"),
            ("customer-summary", f"/customers/{order.customer_id}/summary"),
            ("daily-sales", "/reports/daily-sales"),
        ][choice - 1]
        if label == "daily-sales":
            params |= {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
        label += "-token" if token else ""
        response = await self.record.get(self.api, label, path, params=params, headers=token)
        if response is None:
            return
        if token:
            # The order's own token: a fresh answer shows at least its last version.
            own = order.last if label == "get-order-token" else None
            self.record.token_read(label, response, own)
        allowed = {200, 404} if label.startswith("get-order") else {200}
        if response.status_code not in allowed and response.status_code < 500:
            self.record.violation(f"{label}: {response.status_code} {response.text[:300]}")

    async def hot_order_life(self, generation: int, run_id: str) -> None:
        """This client's part in the life of hot order ``generation`` (shared with others)."""
        body = new_order_body(f"hot-{run_id}", f"HOT-{generation}", 1, 500)
        created = await self.send(
            "hot-create",
            "POST",
            "/orders",
            key=f"hot-{run_id}-{generation:08d}",
            body=body,
        )
        if created is None or not created.is_success:
            self.expected(created, "hot-create", set())
            return
        order = Order(str(created.json()["order_id"]), f"hot-{run_id}", last=self.record.acks[-1])
        base = f"/orders/{order.order_id}"
        for _ in range(2):
            line = {"sku": self.sku(), "quantity": 1, "unit_price": 300}
            pin = order.last.version if order.last and self.rng.random() < 0.5 else None
            response = await self.command(
                order, "hot-add-item", "POST", f"{base}/items", body=line, if_match=pin
            )
            self.expected(response, "hot-add-item", EXPECTED_ON_HOT)
        response = await self.command(order, "hot-place", "POST", f"{base}/place")
        self.expected(response, "hot-place", EXPECTED_ON_HOT)
        view = await self.read_order(order)
        if view is not None and view["status"] == "placed":
            amount = {"amount": view["outstanding"]}
            response = await self.command(order, "hot-pay", "POST", f"{base}/payments", body=amount)
            self.expected(response, "hot-pay", EXPECTED_ON_HOT)
        response = await self.command(order, "hot-ship", "POST", f"{base}/ship", body=SHIPMENT)
        self.expected(response, "hot-ship", EXPECTED_ON_HOT)


async def run_client(client: Client, *, hot: bool, run_id: str) -> None:
    """Order lives (or hot order lives) until the record says stop."""
    generation = 0
    while not client.record.stopped:
        if hot:
            await client.hot_order_life(generation, run_id)
            generation += 1
        else:
            await client.order_life(first_items=client.rng.randint(1, 8))
