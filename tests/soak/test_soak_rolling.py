"""A rolling restart under traffic costs reads nothing: the stack as ``make run`` starts it with
two projector instances, paced traffic, and every instance replaced in turn twice (SIGTERM, a new
instance), the stores left running; then every proof of the soak (see ``harness``).

A stopped instance hands its leases over after its last batch, and a new one is handed its share
between its holder's batches (``projector.leases``), so no projection goes unfed for long. Reads
with a token wait up to the read side's bound (``MAX_WAIT_MS``, 10 s): every one made during the
replacements and just after them must come back fresh. The leases last 15 s here, so a handover
that fell back to a lease's expiry (leases left behind by a SIGTERM'd instance) would leave a
projection unfed past that wait and fail this test. ``benchmarks.soak`` measures the same with
the API's default wait (``--token-wait-ms 2000 --no-store-restarts``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from read_side.queries import MAX_WAIT_MS
from tests.soak.harness import SoakPlan
from tests.soak.runs import EMBEDDED_STORES_ONLY, soaked

pytestmark = [
    pytest.mark.e2e,
    EMBEDDED_STORES_ONLY,
]

ROLLING = SoakPlan(
    seconds=20,
    clients=6,
    hot_clients=2,
    projector_kills=0,
    catch_up_kills=0,
    projectors=2,
    lease_s=15,
    rolling_restarts=2,
    store_restarts=False,
    rate=10,
    token_wait_ms=MAX_WAIT_MS,
)
PHASES = ("rolling restart", "after rolling restart")


async def test_rolling_restarts_under_traffic_leave_no_read_stale_and_lose_nothing(
    tmp_path: Path,
) -> None:
    figures = await soaked(ROLLING, tmp_path)
    assert figures.record.stale_share("rolling restart")[1] > 0, "no read during the restarts"
    stale = {phase: figures.record.stale_share(phase) for phase in PHASES}
    assert all(count == 0 for count, _ in stale.values()), stale
