"""``shared.process.deadlines.within``: a time bound that the awaited work cannot swallow.

The work below is driven by events the test controls, so nothing depends on how fast the
machine is: "late" work waits on an event that is only set after the bound has fired.
"""

from __future__ import annotations

import asyncio

import pytest

from shared.process.deadlines import reassert_cancellation, within

BOUND_S = 0.05


async def swallows_cancellation(release: asyncio.Event) -> str:
    """Like esdbclient's reads: a cancellation is caught and a made-up answer returned later."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await release.wait()
        return "made-up answer"
    raise AssertionError("unreachable")


async def test_the_result_in_time_is_returned() -> None:
    async def answers() -> int:
        return 42

    assert await within(answers(), BOUND_S) == 42


async def test_an_exception_of_the_work_propagates() -> None:
    async def fails() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await within(fails(), BOUND_S)


async def test_work_that_swallows_its_cancellation_still_times_out() -> None:
    release = asyncio.Event()
    work = asyncio.ensure_future(swallows_cancellation(release))
    with pytest.raises(TimeoutError):
        await within(work, BOUND_S)
    # asyncio.wait_for would have waited for the made-up answer and returned it.
    assert not work.done()
    release.set()
    assert await work == "made-up answer"


async def test_wait_for_is_fooled_by_the_same_work() -> None:
    # Why ``within`` exists: the standard bound returns the swallowed answer.
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(BOUND_S * 2, release.set)
    assert await asyncio.wait_for(swallows_cancellation(release), BOUND_S) == "made-up answer"


async def test_work_cancelled_by_somebody_else_is_no_answer() -> None:
    # A library cancelling its own call (a gRPC channel closed under it) must not look like a
    # request to cancel the caller.
    started = asyncio.Event()

    async def cancelled_under_us() -> None:
        started.set()
        await asyncio.Event().wait()

    work = asyncio.ensure_future(cancelled_under_us())

    async def cancel_it() -> None:
        await started.wait()
        work.cancel()

    canceller = asyncio.create_task(cancel_it())
    with pytest.raises(TimeoutError, match="cancelled before it answered"):
        await within(work, 30)
    await canceller


async def test_cancelling_the_caller_cancels_the_work_and_propagates() -> None:
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.Event().wait()

    work = asyncio.ensure_future(waits())
    caller = asyncio.create_task(within(work, 30))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    with pytest.raises(asyncio.CancelledError):
        await work
    assert work.cancelled()


async def test_reassert_cancellation_honours_a_swallowed_request() -> None:
    inside = asyncio.Event()
    proceed = asyncio.Event()
    reached_after = False

    async def caller() -> None:
        nonlocal reached_after
        try:
            inside.set()
            await proceed.wait()
        except asyncio.CancelledError:
            pass  # a library swallowed it
        reassert_cancellation()
        reached_after = True

    task = asyncio.create_task(caller())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not reached_after
