"""Command handling: load the order, decide, append; retry conflicts by deciding again.

A ``ConcurrencyError`` on append means another writer got in first. The whole command is re-run
on freshly loaded state (the decision may differ now), never by re-sending the same append. A
client that pinned the version (``If-Match``) gets ``VersionMismatch`` instead: it asked not to
act on a state it has not seen.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity import wait_random_exponential as wait_jittered

from shared.messaging.bus import MessageBus
from shared.messaging.messages import Command
from shared.ports.event_store import ConcurrencyError, EventStore
from write_side.commands import ORDER_COMMANDS, CreateOrder, OrderCommand
from write_side.domain.decide import decide
from write_side.errors import IdempotencyKeyReused, OrderNotFound, VersionMismatch
from write_side.repository import LoadedOrder, OrderRepository, event_ids


class CommandResult(BaseModel):
    """Outcome of a command: the stream revision after it and the commit position of its last
    event (the read side's consistency token)."""

    model_config = ConfigDict(frozen=True)

    order_id: UUID
    version: int
    position: int


def _already_applied(loaded: LoadedOrder, command: OrderCommand) -> CommandResult | None:
    """The original result when this request (same key, same content) was applied before."""
    key = command.idempotency_key
    applied = loaded.applied.get(key) if key is not None else None
    if key is None or applied is None:
        return None
    if list(applied.event_ids) != event_ids(command, len(applied.event_ids)):
        raise IdempotencyKeyReused(key)
    return CommandResult(
        order_id=command.order_id, version=applied.revision, position=applied.position
    )


# Sized so that 20 concurrent writers on one order all get through (each round of conflicts
# lets at least one of them in) while a hopeless command still gives up within seconds.
MAX_ATTEMPTS = 30
MAX_BACKOFF_S = 0.1


class OrderCommandHandler:
    """Handles every order command. ``max_attempts`` bounds the decide-append rounds lost to
    concurrent writers; each retry waits a random, exponentially growing pause (jitter keeps
    competing writers from colliding again in lock-step)."""

    def __init__(
        self,
        repository: OrderRepository,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self._repository = repository
        self._max_attempts = max_attempts
        self._max_backoff_s = max_backoff_s

    async def __call__(self, command: OrderCommand) -> CommandResult:
        """Apply ``command``. Raises OrderNotFound, RuleViolation, VersionMismatch, and
        ConcurrencyError when every attempt lost to a concurrent writer."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ConcurrencyError),
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_jittered(multiplier=0.005, max=self._max_backoff_s),
            reraise=True,
        ):
            with attempt:
                return await self._attempt(command)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, command: OrderCommand) -> CommandResult:
        loaded = await self._repository.load(command.order_id)
        original = _already_applied(loaded, command)
        if original is not None:
            return original
        if loaded.state is None and not isinstance(command, CreateOrder):
            raise OrderNotFound(command.order_id)
        pinned = command.expected_version
        if pinned is not None and pinned != loaded.version:
            raise VersionMismatch(command.order_id, pinned, loaded.version)
        events = decide(loaded.state, command)
        if not events:
            # Only an existing order can decide nothing (creating always records an event).
            assert loaded.version is not None and loaded.position is not None
            return CommandResult(
                order_id=command.order_id, version=loaded.version, position=loaded.position
            )
        try:
            result = await self._repository.save(command, loaded.expected, events)
        except ConcurrencyError as error:
            if pinned is not None:
                raise VersionMismatch(command.order_id, pinned, error.actual) from error
            raise
        return CommandResult(
            order_id=command.order_id, version=result.revision, position=result.position
        )


def build_command_bus(
    store: EventStore, *, max_attempts: int = MAX_ATTEMPTS, max_backoff_s: float = MAX_BACKOFF_S
) -> MessageBus[Command]:
    """The write side's command bus: one handler registered per order command type."""
    handler = OrderCommandHandler(
        OrderRepository(store), max_attempts=max_attempts, max_backoff_s=max_backoff_s
    )
    bus: MessageBus[Command] = MessageBus("command")
    for command_type in ORDER_COMMANDS:
        bus.register(command_type, handler)
    return bus
