"""A typed message bus: one handler per message type, registered once.

The command bus and the query bus are both instances of this; the rules are the same:
registering a type twice is an error, dispatching an unregistered type is an error.

``MessageBus[M, R]`` carries messages of type ``M`` to handlers that all answer ``R``, so
``await bus.dispatch(message)`` is an ``R`` without a cast, and a handler answering something
else does not type-check at ``register``. A bus whose handlers answer different types may leave
``R`` out: it is then ``object``, which a caller has to narrow (never ``Any``, which would let
a wrong guess through unchecked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.errors import ServiceError


class MessageBus[M, R = object]:
    """Routes a message to the handler registered for its exact type."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._handlers: dict[type[M], Callable[[Any], Awaitable[R]]] = {}

    def register[T](self, message_type: type[T], handler: Callable[[T], Awaitable[R]]) -> None:
        """Register the handler for ``message_type``; a second registration raises."""
        if message_type in self._handlers:
            raise HandlerAlreadyRegistered(
                f"a handler for {self._kind} {message_type.__name__} is already registered"
            )
        self._handlers[message_type] = handler  # type: ignore[index]

    async def dispatch(self, message: M) -> R:
        """Run the handler for ``type(message)``; raises NoHandlerRegistered when there is none."""
        handler = self._handlers.get(type(message))
        if handler is None:
            raise NoHandlerRegistered(
                f"no handler registered for {self._kind} {type(message).__name__}"
            )
        return await handler(message)

    @property
    def registered(self) -> frozenset[type[M]]:
        return frozenset(self._handlers)


class HandlerAlreadyRegistered(ServiceError):
    """A message type was registered twice on one bus."""


class NoHandlerRegistered(ServiceError):
    """A message was dispatched whose type no handler is registered for."""
