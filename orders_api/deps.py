"""Dependencies of the API's own routes (health, projections, metrics, admin), as aliases.

Each side's router has its own deps module (it must not import this package); everything they
read is put on ``app.state`` by the app factory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request

from orders_api.metrics import ApiMetrics
from orders_api.projection_report import ProjectionReport
from orders_api.rebuild_jobs import RebuildJobs
from orders_api.settings import ApiSettings
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStore


async def get_settings_of_app(request: Request) -> ApiSettings:
    return cast(ApiSettings, request.app.state.settings)


async def get_event_store(request: Request) -> EventStore:
    return cast(EventStore, request.app.state.event_store)


async def get_document_store(request: Request) -> DocumentStore:
    return cast(DocumentStore, request.app.state.document_store)


Settings = Annotated[ApiSettings, Depends(get_settings_of_app)]
EventStoreDep = Annotated[EventStore, Depends(get_event_store)]
DocumentStoreDep = Annotated[DocumentStore, Depends(get_document_store)]


async def get_rebuild_jobs(request: Request) -> RebuildJobs:
    return cast(RebuildJobs, request.app.state.rebuild_jobs)


RebuildJobsDep = Annotated[RebuildJobs, Depends(get_rebuild_jobs)]


async def get_metrics(request: Request) -> ApiMetrics:
    return cast(ApiMetrics, request.app.state.metrics)


MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


async def get_projection_report(request: Request) -> ProjectionReport:
    return cast(ProjectionReport, request.app.state.projection_report)


ProjectionReportDep = Annotated[ProjectionReport, Depends(get_projection_report)]


async def _drop_projection_report_after_action(
    request: Request, report: ProjectionReportDep
) -> AsyncIterator[None]:
    # Past the yield only when the route succeeded, and only actions count: a refused request
    # (no token, nothing to park) changed nothing and must not make probes read the stores.
    yield
    if request.method not in ("GET", "HEAD"):
        report.invalidate()


# On the admin router: after an operator's action the next probe or scrape reads the
# projections again, so it shows the action's effect at once ("function": before the answer).
DropsProjectionReportAfterAction = Depends(_drop_projection_report_after_action, scope="function")
