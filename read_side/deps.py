"""Dependencies of the query routes, as ``Annotated`` aliases.

The query bus lives on ``app.state`` (the app factory puts it there). The read-your-writes
request is the ``X-Consistency-Token`` header (a commit position a command returned) and the
``wait_ms`` query parameter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Header, Request
from fastapi import Query as QueryParam
from starlette.types import Receive

from read_side.http_problems import MALFORMED_CONSISTENCY_TOKEN
from read_side.queries import DEFAULT_WAIT_MS, MAX_WAIT_MS
from shared.messaging.bus import MessageBus
from shared.messaging.messages import Query
from shared.web.consistency_token import TOKEN_FORMAT, position_of
from shared.web.problem_catalogue import VALIDATION_FAILED
from shared.web.problem_details import ProblemError


async def get_query_bus(request: Request) -> MessageBus[Query]:
    return cast(MessageBus[Query], request.app.state.query_bus)


async def _never() -> None:
    await asyncio.Event().wait()


@dataclass(frozen=True, slots=True)
class Consistency:
    """How fresh the answer must be: at least ``min_position``, waiting up to ``wait_ms``.
    ``client_left`` returns once the client has disconnected (a wait is given up then)."""

    min_position: int | None
    wait_ms: int
    client_left: Callable[[], Awaitable[None]] = _never


def until_disconnected(receive: Receive) -> Callable[[], Awaitable[None]]:
    """Returns once ``receive`` reports the client's disconnect. uvicorn does not cancel a
    request whose client left; it only says so here, after the (already read) body."""

    async def client_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return client_left


def parse_token(token: str | None) -> int | None:
    """The position in an ``X-Consistency-Token`` header; a malformed one is a 400 problem."""
    if token is None:
        return None
    position = position_of(token.strip())
    if position is None:
        raise ProblemError(
            MALFORMED_CONSISTENCY_TOKEN,
            "X-Consistency-Token must be the decimal commit position a command returned "
            "(its X-Consistency-Token header or `position` field)",
        )
    return position


async def get_consistency(
    request: Request,
    token: Annotated[
        str | None,
        Header(
            alias="X-Consistency-Token",
            description="Read your own write: the X-Consistency-Token (commit position) a "
            "command returned. The query waits until the read model has applied it, up to "
            "wait_ms, then answers anyway (with X-Read-Model-Stale: true if it had not).",
            examples=["184467"],
            json_schema_extra=TOKEN_FORMAT,
        ),
    ] = None,
    wait_ms: Annotated[
        int | None,
        QueryParam(
            ge=0,
            description=f"How long to wait for X-Consistency-Token, in milliseconds "
            f"(default {DEFAULT_WAIT_MS}, at most {MAX_WAIT_MS}; the operator may lower both "
            f"with READ_WAIT_MS_DEFAULT and READ_WAIT_MS_MAX).",
        ),
    ] = None,
) -> Consistency:
    state = request.app.state
    maximum = int(getattr(state, "read_wait_ms_max", MAX_WAIT_MS))
    if wait_ms is None:
        wait_ms = min(int(getattr(state, "read_wait_ms_default", DEFAULT_WAIT_MS)), maximum)
    elif wait_ms > maximum:
        raise ProblemError(
            VALIDATION_FAILED,
            f"query.wait_ms: must be at most {maximum}",
            errors=[
                {
                    "field": "query.wait_ms",
                    "message": f"must be at most {maximum}",
                    "type": "less_than_equal",
                }
            ],
        )
    return Consistency(parse_token(token), wait_ms, until_disconnected(request.receive))


QueryBus = Annotated[MessageBus[Query], Depends(get_query_bus)]
ReadConsistency = Annotated[Consistency, Depends(get_consistency)]
