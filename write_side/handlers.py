"""Command handling: one handler per command type, each the same steps around its own decision.

A handler loads the order, answers a repeated request (same idempotency key) with what it wrote
the first time, checks that the order exists and is at the pinned version, decides, and
appends. A ``ConcurrencyError`` on append means another writer got in first: the whole command
is re-run on freshly loaded state (the decision may differ now), never by re-sending the same
append. A client that pinned the version (``If-Match``) gets ``VersionMismatch`` instead: it
asked not to act on a state it has not seen.

Loading reads the order's whole stream, so the orders decided on recently are kept in an
``OrderCache`` (per bus, so per process). A command on a cached order is first decided on the
cached state and appended at the cached revision; the store's compare-and-set makes that safe
with any number of processes. The cache may only make a command succeed sooner, never answer it
differently: the command is decided again on a fresh read whenever the cached state would
answer anything but "done" (a rule violation, a version mismatch, nothing to decide, a key
reused) and when its append loses the compare-and-set (the entry is then forgotten; that round
counts against the attempt budget as one lost to another writer, but every command gets at
least one round on a fresh read). A repeated idempotency key is answered from the cache when
the cached order holds it (what a key wrote stays written), else from the fresh read. A create
needs no read either: an order not in the cache is first taken not to exist, and the append at
``NO_STREAM`` is refused if it does (or absorbed, for a repeat of the same keyed create).

The command bus is the only dispatch: it picks the handler by the command's type, and that
handler knows its decision.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity import wait_random_exponential as wait_jittered

from shared.contract.versioned_events import Event
from shared.messaging.bus import MessageBus
from shared.ports.event_store import ConcurrencyError, EventStore
from write_side.commands import (
    AddItem,
    CancelOrder,
    ChangeShippingAddress,
    CreateOrder,
    OrderCommand,
    PlaceOrder,
    RecordPayment,
    RemoveItem,
    ShipOrder,
)
from write_side.domain import decide
from write_side.domain.order import Order
from write_side.errors import IdempotencyKeyReused, OrderNotFound, RuleViolation, VersionMismatch
from write_side.order_cache import MAX_CACHED_ORDERS, OrderCache
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


def existing_order(loaded: LoadedOrder) -> Order:
    """The order a command acts on. The one place ``OrderNotFound`` is raised: every command
    but ``CreateOrder`` needs an order that was created."""
    if loaded.state is None:
        raise OrderNotFound(loaded.order_id)
    return loaded.state


def order_or_none(loaded: LoadedOrder) -> Order | None:
    """What ``CreateOrder`` decides on: None when the order does not exist yet (the decision
    refuses an existing one)."""
    return loaded.state


# Sized so that 20 concurrent writers on one order all get through (each round of conflicts
# lets at least one of them in) while a hopeless command still gives up within seconds.
MAX_ATTEMPTS = 30
MAX_BACKOFF_S = 0.1


class OrderCommandHandler[C: OrderCommand, S: Order | None]:
    """Handles one command type ``C``: ``state`` gives its decision the order it acts on (``S``:
    an ``Order``, or ``Order | None`` for the command that creates one), ``decide`` is the
    decision. ``cache`` holds the orders decided on recently (shared by every handler of a bus);
    with ``presume_new`` (the command that creates an order) an order not in it is first taken
    not to exist, since the append at ``NO_STREAM`` is refused if it does.
    ``max_attempts`` bounds the decide-append rounds lost to concurrent writers; each retry on a
    fresh read waits a random, exponentially growing pause (jitter keeps competing writers from
    colliding again in lock-step)."""

    def __init__(
        self,
        repository: OrderRepository,
        cache: OrderCache,
        state: Callable[[LoadedOrder], S],
        decide: Callable[[S, C], list[Event]],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        max_backoff_s: float = MAX_BACKOFF_S,
        presume_new: bool = False,
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._presume_new = presume_new
        self._state = state
        self._decide = decide
        self._max_attempts = max_attempts
        self._max_backoff_s = max_backoff_s

    async def __call__(self, command: C) -> CommandResult:
        """Apply ``command``. Raises OrderNotFound, RuleViolation, VersionMismatch, and
        ConcurrencyError when every attempt lost to a concurrent writer."""
        attempts = self._max_attempts
        cached = self._cache.get(command.order_id)
        if cached is None and self._presume_new:
            cached = LoadedOrder(order_id=command.order_id, state=None, version=None, position=None)
        if cached is not None:
            try:
                done = await self._on_cached(command, cached)
            except ConcurrencyError:
                # Written since the entry was kept: decide again on a fresh read, at once.
                self._cache.forget(command.order_id, cached.version)
                attempts = max(1, attempts - 1)
            else:
                if done is not None:
                    return done
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ConcurrencyError),
            stop=stop_after_attempt(attempts),
            wait=wait_jittered(multiplier=0.005, max=self._max_backoff_s),
            reraise=True,
        ):
            with attempt:
                return await self._attempt(command)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _on_cached(self, command: C, cached: LoadedOrder) -> CommandResult | None:
        """The result of ``command`` decided on the cached order, or None when it must be
        decided on a fresh read. Raises ConcurrencyError when the append at the cached
        revision lost (the order moved on since it was cached)."""
        try:
            original = _already_applied(cached, command)
        except IdempotencyKeyReused:
            return None
        if original is not None:
            return original
        pinned = command.expected_version
        if pinned is not None and pinned != cached.version:
            return None
        try:
            events = self._decide(self._state(cached), command)
        except (RuleViolation, OrderNotFound):
            return None
        if not events:
            return None
        result = await self._repository.save(command, cached.expected, events)
        self._cache.remember(cached.after_append(command, events, result))
        return CommandResult(
            order_id=command.order_id, version=result.revision, position=result.position
        )

    async def _attempt(self, command: C) -> CommandResult:
        loaded = await self._repository.load(command.order_id)
        self._cache.remember(loaded)
        original = _already_applied(loaded, command)
        if original is not None:
            return original
        state = self._state(loaded)
        pinned = command.expected_version
        if pinned is not None and pinned != loaded.version:
            raise VersionMismatch(command.order_id, pinned, loaded.version)
        events = self._decide(state, command)
        if not events:
            # Only an existing order can decide nothing (creating always records an event).
            assert loaded.version is not None and loaded.position is not None
            return CommandResult(
                order_id=command.order_id, version=loaded.version, position=loaded.position
            )
        try:
            result = await self._repository.save(command, loaded.expected, events)
        except ConcurrencyError as error:
            self._cache.forget(command.order_id, loaded.version)
            if pinned is not None:
                raise VersionMismatch(command.order_id, pinned, error.actual) from error
            raise
        self._cache.remember(loaded.after_append(command, events, result))
        return CommandResult(
            order_id=command.order_id, version=result.revision, position=result.position
        )


type OrderCommandBus = MessageBus[OrderCommand, CommandResult]


def build_command_bus(
    store: EventStore,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    max_backoff_s: float = MAX_BACKOFF_S,
    cached_orders: int = MAX_CACHED_ORDERS,
) -> OrderCommandBus:
    """The write side's command bus: each order command type with its own handler, all sharing
    one cache of at most ``cached_orders`` orders (0: none)."""
    repository = OrderRepository(store)
    cache = OrderCache(cached_orders)

    def handler[C: OrderCommand, S: Order | None](
        state: Callable[[LoadedOrder], S],
        decision: Callable[[S, C], list[Event]],
        *,
        presume_new: bool = False,
    ) -> OrderCommandHandler[C, S]:
        return OrderCommandHandler(
            repository,
            cache,
            state,
            decision,
            max_attempts=max_attempts,
            max_backoff_s=max_backoff_s,
            presume_new=presume_new,
        )

    bus: OrderCommandBus = MessageBus("command")
    bus.register(CreateOrder, handler(order_or_none, decide.create_order, presume_new=True))
    bus.register(AddItem, handler(existing_order, decide.add_item))
    bus.register(RemoveItem, handler(existing_order, decide.remove_item))
    bus.register(ChangeShippingAddress, handler(existing_order, decide.change_shipping_address))
    bus.register(PlaceOrder, handler(existing_order, decide.place_order))
    bus.register(RecordPayment, handler(existing_order, decide.record_payment))
    bus.register(ShipOrder, handler(existing_order, decide.ship_order))
    bus.register(CancelOrder, handler(existing_order, decide.cancel_order))
    return bus
