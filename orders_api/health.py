"""Liveness and readiness probes.

Ready means "this process can serve requests": both stores answer a ping within a short
timeout. Projections are reported but do not decide readiness: lag only makes answers older
(read-your-writes flags them stale), and a failed projection affects the queries it feeds, not
the commands or the other queries; taking the API out of rotation or restarting it would fix
neither. A failed projection turns ``status`` into ``degraded`` (still 200) with a warning that
says how to resume it. The projection figures come from ``orders_api.projection_report``: read
at most once per ``PROJECTION_REPORT_TTL_S`` for every probe and scrape, their age given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from orders_api import problems
from orders_api.deps import DocumentStoreDep, EventStoreDep, ProjectionReportDep
from orders_api.ops_docs import NOT_READY, READY_EXAMPLE, ok
from orders_api.projection_report import ProjectionReport, ReportUnavailable
from projector.facade import ProjectionStatus
from shared.ports.errors import StoreUnavailable
from shared.process.deadlines import within
from shared.process.logging_setup import redact
from shared.web.problem_details import ProblemError

router = APIRouter(prefix="/health", tags=["operations"])
log = logging.getLogger(__name__)
PING_TIMEOUT_S = 2.0


class Liveness(BaseModel):
    status: Literal["live"] = "live"

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "live"}]})


class ProjectionLag(BaseModel):
    name: str
    version: int
    state: str
    lag_events: int | None = Field(description="Approximate; see GET /projections")
    lag_events_exact: bool
    lag_seconds: float | None
    error: str | None = Field(description="The failing event and error of a failed projection")


class Readiness(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        description="degraded: ready, but see warnings (a projection is failed, or its status "
        "could not be read)"
    )
    checks: dict[str, str] = Field(description="Each store: ok, or why it is unavailable")
    projections: list[ProjectionLag] | None = Field(
        description="Lag of each projection (None when it could not be read in time)"
    )
    projections_age_s: float | None = Field(
        default=None,
        description="How old the projection figures are, in seconds: they are read at most "
        "once per PROJECTION_REPORT_TTL_S for all probes and scrapes (None without figures)",
    )
    warnings: list[str]


@router.get("/live", response_model=Liveness, responses=ok({"status": "live"}))
async def live() -> Liveness:
    """The process is up (answers 200 whenever it can answer at all)."""
    return Liveness()


async def _check(name: str, ping: Callable[[], Awaitable[None]]) -> tuple[str, str, str]:
    """(store, what the probe's body says, what the log says). Only a ping that returned within
    the bound counts: ``within`` stops waiting at the bound even if the client library swallows
    the cancellation and later returns as if it had an answer. The body names the kind of
    failure only; the reason (hosts, ports, driver timeouts) goes to the log."""
    try:
        await within(ping(), PING_TIMEOUT_S)
    except TimeoutError:
        said = f"unavailable: no answer within {PING_TIMEOUT_S:g}s"
        return name, said, said
    except StoreUnavailable as error:
        return name, "unavailable: the ping failed", f"unavailable: {redact(error.reason)}"
    except Exception as error:
        said = f"unavailable: {type(error).__name__}"
        return name, said, said
    return name, "ok", "ok"


def _lag(status: ProjectionStatus) -> ProjectionLag:
    error = None
    if status.error is not None:
        e = status.error
        error = f"failed on {e.event_type} {e.event_id} at position {e.position}: {e.error}"
    return ProjectionLag(
        name=status.name,
        version=status.version,
        state=status.state,
        lag_events=status.lag_events,
        lag_events_exact=status.lag_events_exact,
        lag_seconds=status.lag_seconds,
        error=redact(error) if error else None,
    )


async def projection_lags(
    report: ProjectionReport,
) -> tuple[list[ProjectionLag] | None, list[str], float | None]:
    """Each projection's lag, warnings about failed ones (or about the report itself), and
    how old the figures are."""
    try:
        reading = await report.read()
    except ReportUnavailable as error:
        return None, [f"projection status {error.reason}"], None
    statuses = reading.statuses
    lags = [_lag(status) for status in statuses]
    warnings = [
        f"projection {lag.name} v{lag.version} {lag.error}; after fixing or inspecting it: "
        f"POST /admin/projections/{lag.name}/dead-letters/park"
        for lag in lags
        if lag.error is not None
    ]
    warnings += [
        f"projection {status.name} v{status.version} failing ({redact(status.reason or '')}); "
        "the projector retries it with backoff"
        for status in statuses
        if status.state == "failing"
    ]
    return lags, warnings, report.age_s(reading)


@router.get(
    "/ready",
    response_model=Readiness,
    responses={**ok(READY_EXAMPLE), **NOT_READY},
)
async def ready(
    events: EventStoreDep, documents: DocumentStoreDep, report: ProjectionReportDep
) -> Readiness:
    """Both stores answer a ping (503 naming the one that does not); projector lag reported."""
    results = await asyncio.gather(
        _check("eventstore", events.ping), _check("mongodb", documents.ping)
    )
    checks = {name: said for name, said, _ in results}
    failing = [name for name, said, _ in results if said != "ok"]
    if failing:
        logged = ", ".join(f"{name} {why}" for name, said, why in results if said != "ok")
        log.warning("not ready: %s", logged)
        raise ProblemError(
            problems.NOT_READY,
            f"unreachable: {', '.join(failing)}",
            headers={"Retry-After": "1"},
            checks=checks,
        )
    projections, warnings, age_s = await projection_lags(report)
    return Readiness(
        status="degraded" if warnings else "ready",
        checks=checks,
        projections=projections,
        projections_age_s=age_s,
        warnings=warnings,
    )
