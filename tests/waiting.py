"""Waiting for a condition instead of sleeping: the one polling helper of the suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

WAIT_S = 30.0  # the bound of a wait; never reached when the code is right
POLL_S = 0.02


async def wait_until[T](
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    within_s: float = WAIT_S,
    poll_s: float = POLL_S,
) -> T:
    """Poll ``probe`` until it returns something truthy and return that; after ``within_s``
    fail with an ``AssertionError`` naming ``what`` was awaited."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                value = await probe()
                if value:
                    return value
                await asyncio.sleep(poll_s)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
