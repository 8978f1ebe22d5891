"""``GET /projections``: where each projection stands, straight from the projector's status.

Also the one place the API turns a projection name into a projection (404 listing the known
ones), for these routes and the admin ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from orders_api import problems
from orders_api.deps import DocumentStoreDep, EventStoreDep
from orders_api.ops_docs import (
    LAG_NOTE,
    MONGO_DOWN,
    PROJECTION_STATUS_EXAMPLE,
    PROJECTIONS_EXAMPLE,
    UNKNOWN_PROJECTION,
    ok,
)
from projector.facade import (
    InstanceStatus,
    Projection,
    ProjectionStatus,
    UnknownProjection,
    projection_by_name,
    projection_statuses,
    projector_instances,
)
from shared.web.problem_details import ProblemError

router = APIRouter(prefix="/projections", tags=["operations"])
ProjectionName = Annotated[
    str,
    Path(min_length=1, max_length=100, description="e.g. order_views", examples=["order_views"]),
]


class ProjectionsReport(BaseModel):
    projections: list[ProjectionStatus]
    instances: list[InstanceStatus] = Field(
        description="The live projector instances and the projections each feeds"
    )
    note: str = Field(default=LAG_NOTE, description="How to read lag_events")

    model_config = ConfigDict(json_schema_extra={"examples": [PROJECTIONS_EXAMPLE]})


def find_projection(name: str) -> Projection:
    """The projection called ``name``; a 404 problem listing the known ones otherwise."""
    try:
        return projection_by_name(name)
    except UnknownProjection as error:
        raise ProblemError(
            problems.UNKNOWN_PROJECTION, str(error), known=list(error.known)
        ) from None


@router.get(
    "", response_model=ProjectionsReport, responses={**ok(PROJECTIONS_EXAMPLE), **MONGO_DOWN}
)
async def list_projections(events: EventStoreDep, documents: DocumentStoreDep) -> ProjectionsReport:
    """Every projection: version, checkpoint, head, lag (events: approximate; seconds), state,
    owner; and the live projector instances."""
    return ProjectionsReport(
        projections=await projection_statuses(documents, events),
        instances=await projector_instances(documents),
    )


@router.get(
    "/{name}",
    response_model=ProjectionStatus,
    responses={**ok(PROJECTION_STATUS_EXAMPLE), **UNKNOWN_PROJECTION, **MONGO_DOWN},
)
async def get_projection(
    name: ProjectionName, events: EventStoreDep, documents: DocumentStoreDep
) -> ProjectionStatus:
    """One projection's status, including the progress of a rebuild in progress."""
    projection = find_projection(name)
    [status] = await projection_statuses(documents, events, [projection])
    return status
