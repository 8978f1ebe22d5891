"""The command bus: one handler per command type, registered once."""

from __future__ import annotations

import uuid

import pytest

from shared.messaging.bus import HandlerAlreadyRegistered, MessageBus, NoHandlerRegistered
from shared.messaging.messages import Command
from tests.fakes.event_store import InMemoryEventStore
from tests.write_side.support import ADDRESS
from write_side import commands
from write_side.commands import CreateOrder, OrderCommand, PlaceOrder
from write_side.handlers import CommandResult, build_command_bus


class Unrelated(Command):
    pass


def commands_in_the_code() -> set[type[Command]]:
    """Every concrete command the write side defines: each class in ``write_side.commands``
    that is a ``Command`` and is not the base of other commands. Found, not listed, so that a
    command added without a handler fails the test below."""
    defined = {
        value
        for value in vars(commands).values()
        if isinstance(value, type)
        and issubclass(value, Command)
        and value.__module__ == commands.__name__
    }
    return {
        command
        for command in defined
        if not any(c is not command and issubclass(c, command) for c in defined)
    }


def test_the_commands_are_found_in_the_code() -> None:
    found = commands_in_the_code()
    assert CreateOrder in found and PlaceOrder in found
    assert OrderCommand not in found, "a base class is no command of its own"
    assert len(found) >= 8


def test_every_order_command_has_a_handler() -> None:
    bus = build_command_bus(InMemoryEventStore())
    assert bus.registered == commands_in_the_code()


def test_registering_a_command_type_twice_is_an_error() -> None:
    bus = build_command_bus(InMemoryEventStore())

    async def handler(command: PlaceOrder) -> CommandResult:
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


async def test_each_message_type_reaches_its_own_handler() -> None:
    bus: MessageBus[Command, str] = MessageBus("test")

    class First(Command):
        pass

    class Second(Command):
        pass

    async def first(message: First) -> str:
        return "first"

    async def second(message: Second) -> str:
        return "second"

    bus.register(First, first)
    bus.register(Second, second)
    assert [await bus.dispatch(First()), await bus.dispatch(Second())] == ["first", "second"]
    assert bus.registered == {First, Second}
