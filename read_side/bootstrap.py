"""Wires the query handlers to a document store: the read side's only composition point."""

from __future__ import annotations

from functools import partial

from read_side import handlers
from read_side.consistency import DEFAULT_POLL_INTERVAL_S, CheckpointWatcher, ReadModels
from read_side.queries import GetCustomerSummary, GetDailySales, GetOrder, ListCustomerOrders
from shared.messaging.bus import MessageBus
from shared.messaging.messages import Query
from shared.ports.document_store import DocumentStore


def build_query_bus(
    document_store: DocumentStore,
    *,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    watcher: CheckpointWatcher | None = None,
) -> MessageBus[Query]:
    """A query bus answering every read-side query from ``document_store``.

    Call once per process: the bus owns the process's one checkpoint watcher (``watcher``, or
    one polling every ``poll_interval_s``), which all read-your-writes waits share.
    """
    checkpoints = watcher or CheckpointWatcher(document_store, poll_interval_s=poll_interval_s)
    read_models = ReadModels(document_store, checkpoints)
    bus: MessageBus[Query] = MessageBus("query")
    bus.register(GetOrder, partial(handlers.get_order, read_models=read_models))
    bus.register(
        ListCustomerOrders, partial(handlers.list_customer_orders, read_models=read_models)
    )
    bus.register(
        GetCustomerSummary, partial(handlers.get_customer_summary, read_models=read_models)
    )
    bus.register(GetDailySales, partial(handlers.get_daily_sales, read_models=read_models))
    return bus
