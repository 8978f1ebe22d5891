"""A short soak run (half a minute of traffic) in the default suite: the stack as ``make run``
starts it with two projector instances, mixed traffic, a few faults of every kind (lease owners
killed, a catch-up kill, a rolling restart of the instances, store restarts), then every proof
(see ``harness``)."""

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

SHORT = SoakPlan(
    seconds=30,
    clients=8,
    hot_clients=3,
    projector_kills=4,
    catch_up_events=1000,
    projectors=2,
    rolling_restarts=1,
)


async def test_short_soak_under_faults_loses_nothing(tmp_path: Path) -> None:
    figures = await run_soak(SHORT, tmp_path)
    print("\n".join(figures.lines()))
    assert not figures.failures(), "\n".join(figures.lines())
