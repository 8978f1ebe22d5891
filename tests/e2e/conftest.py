"""Fixtures of the end-to-end suite: stacks started like ``make run``, and their output shown
with the failure of any test that used them."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, StackFactory

STACKS = pytest.StashKey[list[Stack]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: starts the whole stack as processes (in the default suite; ~1 min)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        started: list[Stack] = item.stash.get(STACKS, [])
        for number, stack in enumerate(started, start=1):
            report.sections.append((f"stack {number} output ({stack.log_path})", stack.output()))
    return report


@pytest.fixture
def stacks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StackFactory]:
    """Start stacks with ``stacks()``; any still running after the test is killed."""
    factory = StackFactory(tmp_path)
    request.node.stash[STACKS] = factory.started
    try:
        yield factory
    finally:
        for stack in factory.started:
            stack.kill()  # does something only when a test failed before stopping its stack
