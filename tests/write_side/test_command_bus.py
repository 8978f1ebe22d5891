"""The command bus: one handler per command type, registered once."""

from __future__ import annotations

import uuid

import pytest

from shared.messaging.bus import HandlerAlreadyRegistered, NoHandlerRegistered
from shared.messaging.messages import Command
from tests.fakes.event_store import InMemoryEventStore
from tests.write_side.support import ADDRESS
from write_side.commands import ORDER_COMMANDS, CreateOrder, PlaceOrder
from write_side.handlers import CommandResult, build_command_bus


class Unrelated(Command):
    pass


def test_every_order_command_has_a_handler() -> None:
    bus = build_command_bus(InMemoryEventStore())
    assert bus.registered == frozenset(ORDER_COMMANDS)


def test_registering_a_command_type_twice_is_an_error() -> None:
    bus = build_command_bus(InMemoryEventStore())

    async def handler(command: PlaceOrder) -> None:
        raise AssertionError("never called")

    with pytest.raises(HandlerAlreadyRegistered, match="PlaceOrder"):
        bus.register(PlaceOrder, handler)


async def test_dispatching_an_unregistered_type_is_a_clear_error() -> None:
    bus = build_command_bus(InMemoryEventStore())
    with pytest.raises(NoHandlerRegistered, match="Unrelated"):
        await bus.dispatch(Unrelated())


async def test_dispatch_runs_the_handler_and_returns_its_result() -> None:
    bus = build_command_bus(InMemoryEventStore())
    order_id = uuid.uuid4()
    result = await bus.dispatch(
        CreateOrder(
            order_id=order_id, customer_id="customer-1", currency="EUR", shipping_address=ADDRESS
        )
    )
    assert isinstance(result, CommandResult)
    assert (result.order_id, result.version) == (order_id, 0)
