"""What the soak tests share: they run their own stack of processes on the embedded stores
(killing and restarting them, or not), and each run must leave every proof holding."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import external_uri
from tests.soak.harness import Figures, SoakPlan, run_soak

EMBEDDED_STORES_ONLY = pytest.mark.skipif(
    bool(external_uri("EVENTSTORE_URI") or external_uri("MONGO_URI")),
    reason="runs its own stack of processes on the embedded stores (and may restart them)",
)


async def soaked(plan: SoakPlan, workdir: Path) -> Figures:
    """Run ``plan``, print its figures, and fail with them unless every proof held."""
    figures = await run_soak(plan, workdir)
    print("\n".join(figures.lines()))
    assert not figures.failures(), "\n".join(figures.lines())
    return figures
