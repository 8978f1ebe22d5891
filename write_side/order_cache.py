"""The orders this process decided on recently, so a command need not read the whole stream.

An entry is a ``LoadedOrder``: the decided state, the stream revision and commit position it
stands at, and what each idempotency key wrote up to there (all that ``_already_applied``
needs). It is a hint, never the truth: another process (or another command of this one) may
have appended since. The handler appends at the entry's revision, so the store's optimistic
concurrency refuses a write decided on a stale entry (``ConcurrencyError``); the entry is then
forgotten and the command decided again on a fresh read. Keeping this correct needs no
coordination between API processes.

Bounded by a count of orders, least recently used out first. Only orders that exist are kept
(a missing order is always read, so one created elsewhere is seen at once). A size of 0 keeps
nothing: every command on an existing order reads it, as without a cache.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from write_side.repository import LoadedOrder

# Orders kept per process (API_COMMAND_CACHE_ORDERS). An entry holds an order's state (at most
# MAX_LINES lines) and its idempotency keys: a few kilobytes for a typical order.
MAX_CACHED_ORDERS = 10_000


class OrderCache:
    """A bounded LRU map of order id to the ``LoadedOrder`` last read or written here."""

    def __init__(self, max_orders: int = MAX_CACHED_ORDERS) -> None:
        if max_orders < 0:
            raise ValueError(f"max_orders must be 0 or more, got {max_orders}")
        self._max_orders = max_orders
        self._entries: OrderedDict[UUID, LoadedOrder] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._entries

    def get(self, order_id: UUID) -> LoadedOrder | None:
        """The entry for ``order_id`` (now the most recently used), or None."""
        entry = self._entries.get(order_id)
        if entry is not None:
            self._entries.move_to_end(order_id)
        return entry

    def remember(self, loaded: LoadedOrder) -> None:
        """Keep ``loaded`` unless it does not exist or an entry at a later revision is kept
        already (a slower command finishing after a faster one must not set the order back),
        then drop the least recently used orders beyond the bound."""
        if self._max_orders == 0 or loaded.version is None:
            return
        kept = self._entries.get(loaded.order_id)
        if kept is None or kept.version is None or kept.version <= loaded.version:
            self._entries[loaded.order_id] = loaded
        self._entries.move_to_end(loaded.order_id)
        while len(self._entries) > self._max_orders:
            self._entries.popitem(last=False)

    def forget(self, order_id: UUID, version: int | None) -> None:
        """Drop the entry for ``order_id`` if it stands at ``version`` or earlier: a write at
        that revision lost its compare-and-set, so the order has moved on since (``None``: a
        create lost, the order exists). A later entry (written meanwhile by a command of this
        process that won) is kept."""
        kept = self._entries.get(order_id)
        if version is None or kept is None or kept.version is None:
            return
        if kept.version <= version:
            del self._entries[order_id]
