"""Support for the write side's tests: test data with sane defaults, and a store that lets
another writer in between a command's load and its append."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from shared.contract.order_events import Address, OrderCreated, order_stream
from shared.ports.event_store import (
    AppendResult,
    EventStore,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
)
from tests.fakes.event_store import InMemoryEventStore
from write_side.commands import AddItem, CreateOrder, OrderCommand
from write_side.handlers import CommandResult, build_command_bus

# Runs any order command the way the app does: through the command bus.
Handle = Callable[[OrderCommand], Awaitable[CommandResult]]


def handler_over(store: EventStore, **retries: Any) -> Handle:
    """Every order command over ``store``, through the bus the app builds (``retries``:
    ``max_attempts`` and ``max_backoff_s``)."""
    return build_command_bus(store, **retries).dispatch


ADDRESS = Address(line1="1 Main St", city="Springfield", postal_code="12345", country="US")
OTHER_ADDRESS = Address(
    line1="2 High St", line2="Flat 3", city="Shelbyville", postal_code="54321", country="US"
)


def order_created(order_id: UUID, **overrides: Any) -> OrderCreated:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": "customer-1",
        "currency": "EUR",
        "shipping_address": ADDRESS,
    }
    return OrderCreated(**{**fields, **overrides})


class InterferingStore(InMemoryEventStore):
    """Runs the next queued ``before_append`` action just before an append: another writer
    getting in between this command's load and its append. Appends made by the action itself
    pass straight through."""

    def __init__(self) -> None:
        super().__init__()
        self.before_append: list[Callable[[], Awaitable[object]]] = []
        self._interfering = False

    async def append(
        self, stream: str, expected: ExpectedRevision, events: Sequence[NewEvent]
    ) -> AppendResult:
        if self.before_append and not self._interfering:
            self._interfering = True
            try:
                await self.before_append.pop(0)()
            finally:
                self._interfering = False
        return await super().append(stream, expected, events)


def create(order_id: UUID, **overrides: object) -> CreateOrder:
    fields: dict[str, object] = {
        "order_id": order_id,
        "customer_id": "customer-1",
        "currency": "EUR",
        "shipping_address": ADDRESS,
    }
    return CreateOrder.model_validate({**fields, **overrides})


def add(order_id: UUID, sku: str = "A", quantity: int = 1, **extra: object) -> AddItem:
    return AddItem.model_validate(
        {"order_id": order_id, "sku": sku, "quantity": quantity, "unit_price": 100, **extra}
    )


async def stored(store: InMemoryEventStore, order_id: UUID) -> list[RecordedEvent]:
    return await store.read_stream(order_stream(order_id))


async def new_order(handle: Handle) -> UUID:
    order_id = uuid.uuid4()
    await handle(create(order_id))
    return order_id
