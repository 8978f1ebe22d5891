"""The root of the project's own error types.

Each error lives beside what raises it: the ports' errors in ``shared.ports`` (``StoreUnavailable``
in ``shared.ports.errors``, the event store's in ``shared.ports.event_store``, the document
store's in ``shared.ports.document_store``), the bus's in ``shared.messaging.bus``, the event
contract's in ``shared.contract.versioned_events``. Adapters translate driver errors into these.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error this service raises on purpose."""
