"""The one place that builds the projector's clients (the CLI's composition root).

At start-up both stores are waited for with bounded retries, one clear log line per attempt;
when one does not answer in time, ``StoresUnreachable`` names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, stop_after_delay, wait_exponential_jitter

from projector.settings import ProjectorSettings
from shared.document_store import DocumentStore
from shared.esdb_event_store import EsdbEventStore
from shared.event_store import EventStore
from shared.logging_setup import redact
from shared.motor_document_store import MotorDocumentStore

log = logging.getLogger(__name__)


class StoresUnreachable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Stores:
    events: EventStore
    documents: DocumentStore


async def wait_for_store(
    label: str,
    check: Callable[[], Awaitable[None]],
    wait_s: float,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``check`` until it passes, for at most ``wait_s`` seconds (or until ``stop``)."""

    async def sleep(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def give_up(state: RetryCallState) -> bool:
        return bool(stop and stop.is_set()) or stop_after_delay(wait_s)(state)

    async def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("waiting for %s (attempt %d): %s", label, state.attempt_number, error)

    deadline = asyncio.get_running_loop().time() + wait_s
    try:
        async for attempt in AsyncRetrying(
            stop=give_up,
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
            before_sleep=waiting,
            sleep=sleep,
            reraise=True,
        ):
            with attempt:
                # An attempt may not outlast the budget (the adapters retry on their own too).
                remaining = deadline - asyncio.get_running_loop().time()
                async with asyncio.timeout(max(remaining, 0.2)) as scope:
                    await check()
                if scope.expired():  # esdbclient may swallow the cancellation and "succeed"
                    raise TimeoutError

    except Exception as error:
        reason = str(error) or type(error).__name__
        raise StoresUnreachable(f"{label} did not answer within {wait_s:g}s: {reason}") from error
    log.info("%s is available", label)


@contextlib.asynccontextmanager
async def open_stores(
    settings: ProjectorSettings, stop: asyncio.Event | None = None
) -> AsyncIterator[Stores]:
    """Connected stores, closed on exit. Raises StoresUnreachable."""
    event_store = EsdbEventStore(settings.eventstore_uri)
    document_store = MotorDocumentStore(settings.mongo_uri, settings.mongo_database)

    connected = False

    async def eventstore_ready() -> None:
        nonlocal connected
        if not connected:  # connect() builds the client: once (it makes no RPC for esdb://)
            await event_store.connect()
            connected = True
        await event_store.ping()

    try:
        wait_s = settings.projector_startup_wait_s
        await wait_for_store(
            f"eventstore at {redact(settings.eventstore_uri)}", eventstore_ready, wait_s, stop
        )
        await wait_for_store(
            f"mongodb at {redact(settings.mongo_uri)} (database {settings.mongo_database})",
            document_store.ping,
            wait_s,
            stop,
        )
        yield Stores(event_store, document_store)
    finally:
        for close in (event_store.close, document_store.close):
            with contextlib.suppress(Exception):
                await close()
