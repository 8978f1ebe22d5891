"""A short soak run (about a minute of traffic) in the default suite: the stack as ``make run``
starts it, mixed traffic, a few kills of every kind, then every proof (see ``harness``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import external_uri
from tests.soak.harness import SoakPlan, run_soak

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(external_uri("EVENTSTORE_URI") or external_uri("MONGO_URI")),
        reason="kills and restarts the stores: needs the embedded ones",
    ),
]

SHORT = SoakPlan(seconds=30, clients=8, hot_clients=3, projector_kills=4, catch_up_events=1000)


async def test_short_soak_under_faults_loses_nothing(tmp_path: Path) -> None:
    figures = await run_soak(SHORT, tmp_path)
    print("\n".join(figures.lines()))
    assert not figures.failures(), "\n".join(figures.lines())
