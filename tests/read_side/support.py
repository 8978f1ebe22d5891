"""Helpers of the read side's tests: a watcher tests can wait on, and writers of the
projector's bookkeeping through the ``DocumentStore`` port (the projector itself never runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from read_side.consistency import CheckpointWatcher
from shared.contract.read_models import (
    CHECKPOINTS,
    REGISTRY,
    CheckpointDocument,
    RegistryFields,
    collection_name,
)
from shared.ports.document_store import DocumentStore, ReplaceOne, UpdateOne

# Bound of every wait for a condition; never reached when the code is right. Shorter than
# LONG_WAIT_MS so that a request released by its own timeout, not by the checkpoint, fails.
WAIT_S = 5.0
LONG_WAIT_MS = 10_000


class ObservedWatcher(CheckpointWatcher):
    """The real watcher, announcing each completed poll so tests can wait for conditions."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, poll_interval_s=0.005)
        self._polled = asyncio.Event()

    async def poll_once(self) -> None:
        await super().poll_once()
        self._polled.set()
        self._polled = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded) until ``condition`` holds after some poll."""
        async with asyncio.timeout(WAIT_S):
            while not condition():
                await self._polled.wait()

    async def polls_after_now(self) -> None:
        """Wait until a poll that started after this call has completed."""
        target = self.polls + 2
        await self.until(lambda: self.polls >= target)


async def seed(
    store: DocumentStore,
    projection: str,
    documents: Sequence[dict[str, Any]],
    *,
    version: int = 1,
) -> str:
    """Write ``documents`` into the collection of ``projection``'s ``version``; returns it."""
    collection = collection_name(projection, version)
    ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents]
    await store.bulk_write(collection, ops)
    return collection


async def set_checkpoint(
    store: DocumentStore, projection: str, position: int, *, version: int = 1
) -> None:
    """Record that ``projection``'s ``version`` has applied everything up to ``position``."""
    now = datetime.now(UTC)
    checkpoint = CheckpointDocument(
        projection, version, position, state="live", last_event_at=now, updated_at=now
    )
    await store.bulk_write(
        CHECKPOINTS, [UpdateOne({"_id": checkpoint.id}, checkpoint.update(), upsert=True)]
    )


async def activate(store: DocumentStore, projection: str, version: int) -> None:
    """Switch the read side to ``version`` of ``projection``, as a finished rebuild does."""
    await store.bulk_write(
        REGISTRY,
        [
            UpdateOne(
                {"_id": projection}, {"$set": RegistryFields(active_version=version)}, upsert=True
            )
        ],
    )
