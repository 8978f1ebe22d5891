"""``GET /metrics``: the API's Prometheus metrics; the projection gauges are set at each scrape
from the projection report (``orders_api.projection_report``), which reads the stores at most
once per ``PROJECTION_REPORT_TTL_S`` however many scrapers call."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from orders_api.deps import MetricsDep, ProjectionReportDep
from orders_api.metrics import METRICS_CONTENT_TYPE, ApiMetrics
from orders_api.ops_docs import METRICS_EXAMPLE
from orders_api.projection_report import ProjectionReport, ReportUnavailable

router = APIRouter(tags=["operations"])


async def refresh_projection_gauges(metrics: ApiMetrics, report: ProjectionReport) -> bool:
    """Set the projection gauges from the report; False (gauges kept, ``status_ok`` 0) when it
    could not be read (the report logs why, once per failed reading)."""
    try:
        reading = await report.read()
    except ReportUnavailable:
        metrics.status_ok.set(0)
        return False
    metrics.update_projections(reading.statuses, reading.dead_letters)
    return True


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": METRICS_EXAMPLE}},
        }
    },
)
async def metrics(registry: MetricsDep, report: ProjectionReportDep) -> PlainTextResponse:
    """Prometheus metrics: commands, queries, read-your-writes, and each projection's lag."""
    await refresh_projection_gauges(registry, report)
    return PlainTextResponse(registry.render(), media_type=METRICS_CONTENT_TYPE)
