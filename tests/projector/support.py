"""Helpers for the projector tests: order event scripts, a daemon in a task, waiting on positions.

Every test appends orders with random ids and customers, and dates their events on a day no
other test of the run uses (the ``occurred_at`` metadata), drawn from the years 2001-9998, so its
documents in the daily report are its own even when the shared event store holds other tests'
orders, or other runs' orders on a long-lived server.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projector.catalog import subscription_event_types
from projector.checkpoint_store import CheckpointRecord, load_checkpoint
from projector.daemon import run_daemon
from projector.projection import Projection
from projector.projections import all_projections
from projector.runner import RunnerSettings
from projector.version_registry import read_entry
from shared.contract.order_events import (
    Address,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderPlaced,
    OrderShipped,
    PaymentReceived,
    build_order_event_registry,
    order_stream,
)
from shared.contract.read_models import collection_name
from shared.contract.versioned_events import Event, EventMetadata, EventRegistry
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import ANY, AppendResult, EventStore, NewEvent
from tests.waiting import wait_until

WAIT_S = 30.0
FAST = RunnerSettings(
    batch_size=100, batch_wait_s=0.02, idle_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.2
)
ADDRESS = Address(line1="1 Main St", city="Lyon", postal_code="69001", country="FR")


_FIRST_DAY = datetime(2001, 1, 1, 12, tzinfo=UTC)
_DAYS = (datetime(9999, 1, 1, tzinfo=UTC) - _FIRST_DAY).days
_DAYS_TAKEN: set[int] = set()


def random_day() -> datetime:
    """Noon UTC on a random day that no other test of this run has been given: two tests
    sharing a day would count each other's orders in the daily report."""
    while (offset := random.randrange(_DAYS)) in _DAYS_TAKEN:
        pass
    _DAYS_TAKEN.add(offset)
    return _FIRST_DAY + timedelta(days=offset)


def new_event(event: Event, occurred_at: datetime) -> NewEvent:
    metadata = EventMetadata(
        schema_version=type(event).schema_version,
        occurred_at=occurred_at,
        correlation_id=uuid.uuid4().hex,
    )
    return NewEvent(
        uuid.uuid4(), event.event_type, EventRegistry.serialize(event), metadata.to_json()
    )


@dataclass
class Order:
    """One order's story; ``ending`` is "draft", "paid", "shipped" or "cancelled"."""

    customer_id: str
    ending: str = "shipped"
    order_id: uuid.UUID = field(default_factory=uuid.uuid4)
    skus: tuple[str, ...] = ("SKU-1", "SKU-2")
    extra_items: int = 0  # more ItemAdded/ItemRemoved pairs, for longer streams

    @property
    def stream(self) -> str:
        return order_stream(self.order_id)

    def events(self) -> list[Event]:
        oid, cid = self.order_id, self.customer_id
        story: list[Event] = [
            OrderCreated(order_id=oid, customer_id=cid, currency="EUR", shipping_address=ADDRESS),
            ItemAdded(order_id=oid, sku=self.skus[0], quantity=2, unit_price=500),
            ItemAdded(order_id=oid, sku=self.skus[1], quantity=1, unit_price=1250),
        ]
        for n in range(self.extra_items):
            story.append(ItemAdded(order_id=oid, sku=f"EXTRA-{n}", quantity=n + 1, unit_price=99))
            story.append(ItemRemoved(order_id=oid, sku=f"EXTRA-{n}"))
        if self.ending == "draft":
            return story
        story.append(ItemRemoved(order_id=oid, sku=self.skus[1]))
        lines = (OrderLine(sku=self.skus[0], quantity=2, unit_price=500),)
        story.append(
            OrderPlaced(order_id=oid, customer_id=cid, currency="EUR", lines=lines, total=1000)
        )
        story.append(PaymentReceived(order_id=oid, customer_id=cid, currency="EUR", amount=1000))
        if self.ending == "shipped":
            story.append(
                OrderShipped(order_id=oid, customer_id=cid, carrier="ACME", tracking_number="T1")
            )
        elif self.ending == "cancelled":
            story.append(
                OrderCancelled(
                    order_id=oid,
                    customer_id=cid,
                    reason="changed mind",
                    previous_status="paid",
                    refund_due=1000,
                )
            )
        return story


async def append_orders(
    store: EventStore,
    orders: Sequence[Order],
    day: datetime,
    *,
    interleave: bool = True,
    per_append: int = 1,
) -> int:
    """Append the orders' events, ``per_append`` events per append, interleaving the orders'
    streams (several appends in flight at once) unless told not to; returns the highest
    position written."""
    stories = [(order, order.events()) for order in orders]
    last = 0
    if not interleave:
        for order, events in stories:
            result = await store.append(order.stream, ANY, [new_event(e, day) for e in events])
            last = max(last, result.position)
        return last
    waves = max(len(events) for _, events in stories)
    for wave in range(0, waves, per_append):
        appends: list[Awaitable[AppendResult]] = [
            store.append(
                order.stream, ANY, [new_event(e, day) for e in events[wave : wave + per_append]]
            )
            for order, events in stories
            if wave < len(events)
        ]
        for start in range(0, len(appends), 32):
            for result in await asyncio.gather(*appends[start : start + 32]):
                last = max(last, result.position)
    return last


async def checkpoint(
    store: DocumentStore, name: str, version: int | None = None
) -> CheckpointRecord | None:
    if version is None:
        version = (await read_entry(store, name)).active_version
    return await load_checkpoint(store, collection_name(name, version))


async def wait_for_position(
    store: DocumentStore,
    position: int,
    names: Sequence[str] | None = None,
    within_s: float = WAIT_S,
) -> None:
    """Until the active version of every projection named has a checkpoint >= ``position``."""
    for name in names or [p.name for p in all_projections()]:

        async def reached(name: str = name) -> bool:
            record = await checkpoint(store, name)
            return record is not None and record.position >= position

        await wait_until(reached, f"{name} to reach position {position}", within_s)


@contextlib.asynccontextmanager
async def running_daemon(
    event_store: EventStore,
    document_store: DocumentStore,
    projections: Sequence[Projection] | None = None,
    settings: RunnerSettings = FAST,
    **options: Any,
) -> AsyncIterator[asyncio.Task[None]]:
    """The daemon in a task; stopped (gracefully) on exit. Re-raises what the task raised."""
    chosen = list(projections) if projections is not None else list(all_projections())
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_daemon(
            event_store,
            document_store,
            build_order_event_registry(),
            chosen,
            event_types=subscription_event_types(chosen),
            settings=settings,
            stop=stop,
            refresh_s=options.pop("refresh_s", 0.05),
            **options,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


def without(document: dict[str, Any] | None, *fields: str) -> dict[str, Any] | None:
    if document is None:
        return None
    return {k: v for k, v in document.items() if k not in fields}
