"""Admin over HTTP: rebuild a projection, list and park dead letters (``ADMIN_TOKEN`` only).

Every route needs ``Authorization: Bearer <ADMIN_TOKEN>`` (``orders_api.admin_auth``); the
app factory mounts this router only when a token is configured. Authentication comes before
anything else, so an unauthenticated caller learns nothing, not even which projections exist.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Response
from fastapi import Query as QueryParam
from pydantic import BaseModel, ConfigDict, Field

from orders_api import problems
from orders_api.admin_auth import AdminOnly
from orders_api.deps import DocumentStoreDep, EventStoreDep, RebuildJobsDep
from orders_api.ops_docs import (
    DEAD_LETTERS_EXAMPLE,
    INVALID,
    MONGO_DOWN,
    NOTHING_TO_PARK,
    PARKED_EXAMPLE,
    REBUILD_ACCEPTED_EXAMPLE,
    REBUILD_REPORT_EXAMPLE,
    REBUILD_RUNNING,
    UNAUTHORIZED,
    UNKNOWN_PROJECTION,
    ok,
)
from orders_api.projections import ProjectionName, find_projection
from orders_api.rebuild_jobs import RebuildAlreadyRunning, RebuildJob
from projector.facade import (
    DeadLetter,
    NothingToPark,
    ProjectionStatus,
    list_dead_letters,
    park_failed_event,
    projection_statuses,
)
from shared.web.problem_details import ProblemError

router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[AdminOnly], responses={**UNAUTHORIZED}
)
log = logging.getLogger(__name__)


def rebuild_status_url(name: str) -> str:
    return f"/admin/projections/{name}/rebuild"


class RebuildAccepted(BaseModel):
    projection: str
    status_url: str = Field(description="GET it to follow the rebuild (also in Location)")
    job: RebuildJob

    model_config = ConfigDict(json_schema_extra={"examples": [REBUILD_ACCEPTED_EXAMPLE]})


class RebuildReport(BaseModel):
    projection: str
    job: RebuildJob | None = Field(
        description="The latest rebuild this API process started (None if none)"
    )
    status: ProjectionStatus = Field(
        description="The projection as it stands: active version, and the version being "
        "rebuilt with its progress"
    )

    model_config = ConfigDict(json_schema_extra={"examples": [REBUILD_REPORT_EXAMPLE]})


class DeadLetters(BaseModel):
    dead_letters: list[DeadLetter] = Field(description="Parked events, oldest first")

    model_config = ConfigDict(json_schema_extra={"examples": [DEAD_LETTERS_EXAMPLE]})


class Parked(BaseModel):
    parked: list[DeadLetter] = Field(description="What was parked (one per failed version)")

    model_config = ConfigDict(json_schema_extra={"examples": [PARKED_EXAMPLE]})


@router.post(
    "/projections/{name}/rebuild",
    status_code=202,
    response_model=RebuildAccepted,
    responses={
        **ok(
            REBUILD_ACCEPTED_EXAMPLE,
            202,
            headers={"Location": {"description": "the status URL", "schema": {"type": "string"}}},
        ),
        **UNKNOWN_PROJECTION,
        **REBUILD_RUNNING,
        **INVALID,
        **MONGO_DOWN,
    },
)
async def start_rebuild(
    name: ProjectionName, response: Response, jobs: RebuildJobsDep
) -> RebuildAccepted:
    """Rebuild a projection without downtime, in the background; follow it at the status URL."""
    projection = find_projection(name)
    url = rebuild_status_url(name)
    try:
        job = await jobs.start(projection)
    except RebuildAlreadyRunning as error:
        raise ProblemError(
            problems.REBUILD_ALREADY_RUNNING,
            str(error),
            headers={"Location": url},
            status_url=url,
        ) from None
    log.info("admin: rebuild of %s accepted", name)
    response.headers["Location"] = url
    return RebuildAccepted(projection=name, status_url=url, job=job.model_copy())


@router.get(
    "/projections/{name}/rebuild",
    response_model=RebuildReport,
    responses={**ok(REBUILD_REPORT_EXAMPLE), **UNKNOWN_PROJECTION, **INVALID, **MONGO_DOWN},
)
async def rebuild_status(
    name: ProjectionName, jobs: RebuildJobsDep, events: EventStoreDep, documents: DocumentStoreDep
) -> RebuildReport:
    """How the latest rebuild is going, and the projection's active version."""
    projection = find_projection(name)
    [status] = await projection_statuses(documents, events, [projection])
    job = jobs.job(name)
    return RebuildReport(projection=name, job=job.model_copy() if job else None, status=status)


@router.get(
    "/dead-letters",
    response_model=DeadLetters,
    responses={**ok(DEAD_LETTERS_EXAMPLE), **INVALID, **MONGO_DOWN},
)
async def list_parked_events(
    documents: DocumentStoreDep,
    projection: Annotated[
        str | None, QueryParam(max_length=100, description="only this projection's")
    ] = None,
) -> DeadLetters:
    """Events an operator parked so a failed projection could resume, oldest first."""
    return DeadLetters(dead_letters=list(await list_dead_letters(documents, projection)))


@router.post(
    "/projections/{name}/dead-letters/park",
    response_model=Parked,
    responses={
        **ok(PARKED_EXAMPLE),
        **UNKNOWN_PROJECTION,
        **NOTHING_TO_PARK,
        **INVALID,
        **MONGO_DOWN,
    },
)
async def park_failing_event(
    name: ProjectionName, events: EventStoreDep, documents: DocumentStoreDep
) -> Parked:
    """Park the event a failed projection stopped on (into dead letters) and let it resume."""
    find_projection(name)
    try:
        parked = await park_failed_event(documents, events, name)
    except NothingToPark as error:
        raise ProblemError(problems.NOTHING_TO_PARK, str(error)) from None
    for letter in parked:
        log.warning(
            "admin: parked %s %s (position %d) of %s v%d",
            letter.event_type,
            letter.event_id,
            letter.position,
            letter.projection,
            letter.version,
        )
    return Parked(parked=parked)
