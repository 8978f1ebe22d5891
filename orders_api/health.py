"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from orders_api.deps import DocumentStoreDep, EventStoreDep
from shared.errors import StoreUnavailable
from shared.problem_details import PROBLEM_JSON, Problem, ProblemError

router = APIRouter(prefix="/health", tags=["operations"])
PING_TIMEOUT_S = 2.0


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up (answers 200 whenever it can answer at all)."""
    return {"status": "live"}


async def _check(name: str, ping: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(ping(), PING_TIMEOUT_S)
    except (StoreUnavailable, TimeoutError) as error:
        return name, f"unavailable: {type(error).__name__}"
    return name, "ok"


@router.get(
    "/ready",
    responses={
        503: {
            "model": Problem,
            "description": "a store cannot be reached; ``checks`` says which",
            "content": {PROBLEM_JSON: {}},
        }
    },
)
async def ready(events: EventStoreDep, documents: DocumentStoreDep) -> dict[str, Any]:
    """Both stores answer a ping; 503 naming the one that does not."""
    checks = dict(
        await asyncio.gather(_check("eventstore", events.ping), _check("mongodb", documents.ping))
    )
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        raise ProblemError(
            503,
            "Not ready",
            f"unreachable: {', '.join(failing)}",
            headers={"Retry-After": "1"},
            checks=checks,
        )
    return {"status": "ready", "checks": checks}
