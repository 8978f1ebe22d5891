"""The one place that builds the projector's clients (the CLI's composition root).

At start-up both stores are waited for with bounded retries, one clear log line per attempt;
when one does not answer in time, ``shared.process.startup.StoreUnreachable`` names it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from projector.settings import ProjectorSettings
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStore
from shared.process.startup import wait_for_store


@dataclass(frozen=True, slots=True)
class Stores:
    events: EventStore
    documents: DocumentStore


@contextlib.asynccontextmanager
async def open_stores(
    settings: ProjectorSettings, stop: asyncio.Event | None = None
) -> AsyncIterator[Stores]:
    """Connected stores, closed on exit. Raises StoreUnreachable."""
    event_store = EsdbEventStore(settings.eventstore_uri)
    document_store = MotorDocumentStore(settings.mongo_uri, settings.mongo_database)

    try:
        wait_s = settings.projector_startup_wait_s
        # wait_for_store redacts credentials from the labels.
        await wait_for_store(
            f"eventstore at {settings.eventstore_uri}", event_store.ping, wait_s, stop=stop
        )
        await wait_for_store(
            f"mongodb at {settings.mongo_uri} (database {settings.mongo_database})",
            document_store.ping,
            wait_s,
            stop=stop,
        )
        yield Stores(event_store, document_store)
    finally:
        for close in (event_store.close, document_store.close):
            with contextlib.suppress(Exception):
                await close()
