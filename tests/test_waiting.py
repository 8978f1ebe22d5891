"""The polling helper fails loudly: a wait that never comes true is a failed test, not a pass."""

from __future__ import annotations

import pytest

from tests.waiting import wait_until


async def test_a_condition_that_never_holds_fails_naming_what_was_awaited() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="timed out waiting for the impossible"):
        await wait_until(never, "the impossible", within_s=0.05, poll_s=0.01)


async def test_the_first_truthy_value_is_returned() -> None:
    answers = iter([None, 0, "", "ready"])

    async def probe() -> str | None:
        return next(answers) or None

    assert await wait_until(probe, "ready", within_s=5) == "ready"
