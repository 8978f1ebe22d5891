"""A typed message bus: one handler per message type, registered once.

The command bus and the query bus are both instances of this; the rules are the same:
registering a type twice is an error, dispatching an unregistered type is an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.errors import ServiceError

Handler = Callable[[Any], Awaitable[Any]]


class MessageBus[M]:
    """Routes a message to the handler registered for its exact type."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._handlers: dict[type[M], Handler] = {}

    def register[T](self, message_type: type[T], handler: Callable[[T], Awaitable[Any]]) -> None:
        """Register the handler for ``message_type``; a second registration raises."""
        if message_type in self._handlers:
            raise HandlerAlreadyRegistered(
                f"a handler for {self._kind} {message_type.__name__} is already registered"
            )
        self._handlers[message_type] = handler  # type: ignore[index]

    async def dispatch(self, message: M) -> Any:
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
