"""Writing a target's documents, and finding the event to blame when MongoDB rejects them.

``StoreUnavailable`` is an outage, not a projection's fault: it propagates and the runner retries
the whole batch with backoff. Any other error from a bulk write (a document MongoDB refuses) is
retried briefly; if it persists, the documents are written again one event at a time, each state
compare-and-set on the one before, until the event whose document fails is found. States already
written (by the partial bulk write) are not written twice: their condition no longer matches.
The target then stops before that event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from shared.document_store import DocumentStore, WriteOp
from shared.errors import StoreUnavailable

WRITE_ATTEMPTS = 3
log = logging.getLogger(__name__)


async def _write(store: DocumentStore, collection: str, ops: Sequence[WriteOp]) -> None:
    async for attempt in AsyncRetrying(
        retry=retry_if_not_exception_type(StoreUnavailable),
        stop=stop_after_attempt(WRITE_ATTEMPTS),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    ):
        with attempt:
            await store.bulk_write(collection, ops)


async def write_or_find_culprit(
    store: DocumentStore,
    collection: str,
    ops: Sequence[WriteOp],
    by_event: Callable[[], Sequence[Sequence[WriteOp]]],
) -> tuple[int, str] | None:
    """Write ``ops``, the batch's effect; if MongoDB refuses them, write ``by_event()`` (the
    same effect as one group of operations per event, consecutive) in order instead.

    None when all were written; otherwise (index of the first group that cannot be written,
    the error). Groups before it are written; none after it is.
    """
    if not ops:
        return None
    try:
        await _write(store, collection, ops)
        return None
    except StoreUnavailable:
        raise
    except Exception as error:
        log.warning("bulk write to %s failed (%s); retrying event by event", collection, error)
    for index, group in enumerate(by_event()):
        if not group:
            continue
        try:
            await _write(store, collection, group)
        except StoreUnavailable:
            raise
        except Exception as error:
            return index, f"write rejected: {type(error).__name__}: {error}"
    # The whole batch failed but every event alone went through: a transient fluke.
    return None
