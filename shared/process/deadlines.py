"""Time bounds that a called library cannot swallow.

``asyncio.timeout`` and ``asyncio.wait_for`` cancel the awaited coroutine and then wait for it
to finish: a library that catches the cancellation and returns normally (esdbclient turns a
cancelled gRPC read into an empty or shortened result) makes the bound silently void, and the
caller carries on with a made-up answer. ``within`` runs the work as a task of its own and
stops waiting when the time is up, whatever the task does with its cancellation: only a result
the task produced in time counts as an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Read the abandoned task's outcome so asyncio does not log "exception never retrieved".
    if not task.cancelled():
        task.exception()


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    task.add_done_callback(_retrieve)


async def within[T](work: Awaitable[T], seconds: float) -> T:
    """The result of ``work`` if it produces one within ``seconds``; else ``TimeoutError``.

    On time-out the task is cancelled and left to end on its own (never awaited). A task that
    ends cancelled although nobody here cancelled it (a library cancelled its own call, e.g. a
    gRPC channel closed under it) gave no answer either: ``TimeoutError`` too, so an exception
    meant for cancelling *this* caller never escapes. When the caller itself is cancelled, the
    task is cancelled as well and the cancellation propagates.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.0, seconds))
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if task not in done:
        _abandon(task)
        raise TimeoutError(f"no answer within {seconds:g}s")
    if task.cancelled():
        raise TimeoutError("the call was cancelled before it answered")
    return task.result()


def reassert_cancellation() -> None:
    """Raise ``CancelledError`` if the current task was asked to cancel.

    For code right after a library call that may have swallowed the cancellation: the request
    to cancel is still counted on the task (``cancelling()``), so it can be honoured here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()
