"""Dependencies of the command routes, as ``Annotated`` aliases.

The command bus lives on ``app.state`` (the app factory puts it there); the correlation id is
the one the correlation middleware chose for this request (``shared.process.logging_setup``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Request

from shared.process.logging_setup import correlation_id as current_correlation_id
from write_side.handlers import OrderCommandBus
from write_side.http.preconditions import (
    IDEMPOTENCY_KEY_FORMAT,
    IDEMPOTENCY_KEY_RULE,
    IF_MATCH_FORMAT,
    checked_idempotency_key,
    expected_version_from_if_match,
)


async def get_command_bus(request: Request) -> OrderCommandBus:
    return cast(OrderCommandBus, request.app.state.command_bus)


async def get_correlation_id() -> str:
    # Set by the correlation middleware; a fresh id keeps the router usable without it.
    return current_correlation_id.get() or uuid.uuid4().hex


async def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes the command safe to repeat: a repeat with the same key returns "
            f"the first result and writes nothing. {IDEMPOTENCY_KEY_RULE}.",
            examples=["5d0c3a9e-8f1b-4c47-a1d2-9e0b7f6c3a21"],
            json_schema_extra=IDEMPOTENCY_KEY_FORMAT,
        ),
    ] = None,
) -> str | None:
    return checked_idempotency_key(idempotency_key)


async def get_expected_version(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='Run only if the order is at this version (its ETag, "<version>"); '
            "otherwise 412. `*` pins no version. RFC 9110 entity-tag lists are understood "
            "too: tags that cannot be a version (weak, opaque) answer 412, several versions "
            "400, anything else malformed 400. Several If-Match lines are one list.",
            examples=['"3"'],
            json_schema_extra=IF_MATCH_FORMAT,
        ),
    ] = None,
) -> int | None:
    # The parameter documents the header; FastAPI hands it only the first line, and RFC 9110
    # makes all the lines one list, so they are read from the request.
    del if_match
    return expected_version_from_if_match(request.headers.getlist("If-Match"))


CommandBus = Annotated[OrderCommandBus, Depends(get_command_bus)]
CorrelationId = Annotated[str, Depends(get_correlation_id)]
IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]
ExpectedVersion = Annotated[int | None, Depends(get_expected_version)]


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What every command on an existing order carries besides its own fields."""

    expected_version: int | None
    idempotency_key: str | None
    correlation_id: str

    def fields(self) -> dict[str, Any]:
        return {
            "expected_version": self.expected_version,
            "idempotency_key": self.idempotency_key,
            "correlation_id": self.correlation_id,
        }


async def get_command_context(
    expected_version: ExpectedVersion, idempotency_key: IdempotencyKey, correlation: CorrelationId
) -> CommandContext:
    return CommandContext(expected_version, idempotency_key, correlation)


Context = Annotated[CommandContext, Depends(get_command_context)]
