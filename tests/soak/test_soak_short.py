"""A short soak run (half a minute of traffic) in the default suite: the stack as ``make run``
starts it with two projector instances, mixed traffic, a few faults of every kind (lease owners
killed, a catch-up kill, a rolling restart of the instances, store restarts), then every proof
(see ``harness``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.harness import SoakPlan
from tests.soak.runs import EMBEDDED_STORES_ONLY, soaked

pytestmark = [
    pytest.mark.e2e,
    EMBEDDED_STORES_ONLY,
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
    await soaked(SHORT, tmp_path)
