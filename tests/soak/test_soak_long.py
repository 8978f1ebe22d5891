"""The long soak run (five minutes of traffic, three projector instances, 25 lease-owner kills,
three rolling restarts), behind ``-m soak``; its figures are the README's
(``python -m benchmarks.soak`` prints the same)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.harness import SoakPlan
from tests.soak.runs import EMBEDDED_STORES_ONLY, soaked

pytestmark = [
    pytest.mark.soak,
    pytest.mark.e2e,
    EMBEDDED_STORES_ONLY,
]

LONG = SoakPlan(
    seconds=300,
    clients=16,
    hot_clients=4,
    projector_kills=25,
    catch_up_events=1000,
    catch_up_kills=3,
    projectors=3,
    rolling_restarts=3,
)


async def test_long_soak_under_faults_loses_nothing(tmp_path: Path) -> None:
    await soaked(LONG, tmp_path)
