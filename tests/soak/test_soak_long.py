"""The long soak run (five minutes of traffic, three projector instances, 25 lease-owner kills,
three rolling restarts), behind ``-m soak``; its figures are the README's
(``python -m benchmarks.soak`` prints the same)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import external_uri
from tests.soak.harness import SoakPlan, run_soak

pytestmark = [
    pytest.mark.soak,
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(external_uri("EVENTSTORE_URI") or external_uri("MONGO_URI")),
        reason="kills and restarts the stores: needs the embedded ones",
    ),
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
    figures = await run_soak(LONG, tmp_path)
    print("\n".join(figures.lines()))
    assert not figures.failures(), "\n".join(figures.lines())
