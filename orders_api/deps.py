"""Dependencies of the API's own routes (health, projections, metrics, admin), as aliases.

Each side's router has its own deps module (it must not import this package); everything they
read is put on ``app.state`` by the app factory.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from orders_api.metrics import ApiMetrics
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
