"""Writing a target's documents, and finding the event to blame when MongoDB rejects them.

Every operation written here is a compare-and-set; the caller learns whether all of them took
effect (``Written.complete``): one that matched nothing means its document moved since it was
read, and the caller must re-read and fold again before its checkpoint may pass those events.

``StoreUnavailable`` is an outage, not a projection's fault: it propagates and the runner retries
the whole batch with backoff. ``DocumentStoreError`` (MongoDB refusing a document) is retried
briefly; if it persists, the documents are written again one event at a time, each state
compare-and-set on the one before, until the event whose document fails is found. States already
written (by the partial bulk write) are not written twice: their condition no longer matches.
The target then stops before that event. Any other error is not MongoDB's verdict on a document,
so no event is blamed for it: it propagates (the dispatcher pauses the target and retries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from shared.ports.document_store import DocumentStore, DocumentStoreError, WriteOp

WRITE_ATTEMPTS = 3
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Written:
    """``culprit``: (index of the first event group MongoDB refuses, the error), or None.
    ``complete``: every operation written took effect (none lost its compare-and-set)."""

    culprit: tuple[int, str] | None
    complete: bool


async def _write(store: DocumentStore, collection: str, ops: Sequence[WriteOp]) -> bool:
    """True when every op changed its document (a retried write counts only its last try,
    which errs on the side of re-reading)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(DocumentStoreError),
        stop=stop_after_attempt(WRITE_ATTEMPTS),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    ):
        with attempt:
            result = await store.bulk_write(collection, ops)
            return result.changed == len(ops)
    raise AssertionError("unreachable: tenacity either returns or raises")


async def write_or_find_culprit(
    store: DocumentStore,
    collection: str,
    ops: Sequence[WriteOp],
    by_event: Callable[[], Sequence[Sequence[WriteOp]]],
) -> Written:
    """Write ``ops``, the batch's effect; if MongoDB refuses them, write ``by_event()`` (the
    same effect as one group of operations per event, consecutive) in order instead.

    With a culprit, groups before it are written and none after it is.
    """
    if not ops:
        return Written(None, complete=True)
    try:
        return Written(None, complete=await _write(store, collection, ops))
    except DocumentStoreError as error:
        log.warning("bulk write to %s failed (%s); retrying event by event", collection, error)
    complete = True
    for index, group in enumerate(by_event()):
        if not group:
            continue
        try:
            complete = await _write(store, collection, group) and complete
        except DocumentStoreError as error:
            culprit = (index, f"write rejected: {type(error).__name__}: {error}")
            return Written(culprit, complete)
    # The whole batch failed but every event alone went through: a transient fluke. Part of
    # the failed bulk write may have landed, so event-by-event writes may have matched nothing.
    return Written(None, complete=complete)
