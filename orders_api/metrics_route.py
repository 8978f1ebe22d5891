"""``GET /metrics``: the API's Prometheus metrics, projection gauges refreshed at each scrape."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from orders_api.deps import DocumentStoreDep, EventStoreDep, MetricsDep
from orders_api.metrics import METRICS_CONTENT_TYPE, ApiMetrics
from orders_api.ops_docs import METRICS_EXAMPLE
from projector.facade import dead_letter_counts, projection_statuses
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStoreReader
from shared.process.logging_setup import redact

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)
# A scrape must answer well within Prometheus' default 10 s timeout even when a store is slow.
REFRESH_TIMEOUT_S = 3.0
COUNT_LIMIT = 1000
COUNT_TIMEOUT_S = 0.5
MAX_DEAD_LETTERS = 10_000


async def refresh_projection_gauges(
    metrics: ApiMetrics, documents: DocumentStore, events: EventStoreReader
) -> bool:
    """Read every projection's status into the gauges; False (gauges kept) if it failed."""
    try:
        async with asyncio.timeout(REFRESH_TIMEOUT_S):
            statuses = await projection_statuses(
                documents, events, count_limit=COUNT_LIMIT, count_timeout_s=COUNT_TIMEOUT_S
            )
            parked = await dead_letter_counts(documents, limit=MAX_DEAD_LETTERS)
    except (TimeoutError, StoreUnavailable) as error:
        log.warning("projection gauges not refreshed: %s", redact(str(error) or "timed out"))
        metrics.status_ok.set(0)
        return False
    metrics.update_projections(statuses, parked)
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
async def metrics(
    registry: MetricsDep, events: EventStoreDep, documents: DocumentStoreDep
) -> PlainTextResponse:
    """Prometheus metrics: commands, queries, read-your-writes, and each projection's lag."""
    await refresh_projection_gauges(registry, documents, events)
    return PlainTextResponse(registry.render(), media_type=METRICS_CONTENT_TYPE)
