"""Waiting for a store at start-up, so the order in which processes start does not matter.

Every process (API, projector) calls ``wait_for_store`` once per store before it starts work:
the check is retried with capped exponential backoff and jitter (tenacity) for at most
``wait_s`` seconds, with one log line per failed attempt saying what it waits for, why, and
when it tries again. Labels are redacted, so a URI with credentials can be part of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from shared.ports.errors import StoreUnavailable
from shared.process.logging_setup import redact

log = logging.getLogger(__name__)


class StoreUnreachable(StoreUnavailable):
    """A store did not pass its check within the start-up budget (a ``StoreUnavailable``, so
    whoever handles outages handles this one too)."""

    def __init__(self, label: str, wait_s: float, attempts: int, error: BaseException) -> None:
        super().__init__(redact(label), redact(str(error) or type(error).__name__))
        self.label = self.store
        self.wait_s = wait_s
        self.attempts = attempts
        self.args = (
            f"{self.label} did not answer within {wait_s:g}s ({attempts} attempts): {self.reason}",
        )


async def wait_for_store(
    label: str,
    check: Callable[[], Awaitable[None]],
    wait_s: float,
    *,
    stop: asyncio.Event | None = None,
    initial_backoff_s: float = 0.2,
    max_backoff_s: float = 5.0,
    min_attempt_s: float = 1.0,
) -> int:
    """Run ``check`` until it returns; the number of attempts it took.

    Any exception from ``check`` counts as "not yet", and so does an attempt still unanswered
    when the budget is spent (each is bounded by the time left, or ``min_attempt_s`` if that is
    longer: a hung connection must not hold start-up beyond its budget). Gives up with
    ``StoreUnreachable`` once ``wait_s`` seconds have passed (the last attempt is made at the
    deadline, never after it), or as soon as ``stop`` is set (a shutdown request).
    """
    shown = redact(label)
    deadline = time.monotonic() + wait_s
    backoff = wait_exponential_jitter(
        multiplier=initial_backoff_s, max=max_backoff_s, jitter=initial_backoff_s
    )

    def next_wait(state: RetryCallState) -> float:
        return max(0.0, min(backoff(state), deadline - time.monotonic()))

    def give_up(state: RetryCallState) -> bool:
        return bool(stop and stop.is_set()) or time.monotonic() >= deadline

    async def sleep(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def report(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "waiting for %s (attempt %d failed: %s); next attempt in %.1fs, giving up in %.0fs",
            shown,
            state.attempt_number,
            redact(str(error) or type(error).__name__) if error else "unknown",
            delay,
            max(0.0, deadline - time.monotonic()),
        )

    attempts = 0
    try:
        async for attempt in AsyncRetrying(
            stop=give_up, wait=next_wait, before_sleep=report, sleep=sleep, reraise=True
        ):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                limit = max(deadline - time.monotonic(), min_attempt_s)
                try:
                    async with asyncio.timeout(limit) as scope:
                        await check()
                except TimeoutError:
                    raise TimeoutError(f"no answer within {limit:.1f}s") from None
                # esdbclient can swallow the cancellation and return as if it had an answer.
                if scope.expired():
                    raise TimeoutError(f"no answer within {limit:.1f}s")
    except Exception as error:
        log.error("%s still unreachable after %d attempts; giving up", shown, attempts)
        raise StoreUnreachable(label, wait_s, attempts, error) from error
    log.info("%s is reachable (attempt %d)", shown, attempts)
    return attempts
