"""The dependency of the command routes: one per route, so FastAPI solves a single dependency
for a command (each one it solves costs a request noticeably; see
``benchmarks/command_throughput.py``).

``CommandContext`` is what every command carries besides its own fields, and the bus it goes
to. The command bus lives on ``app.state`` (the app factory puts it there); the correlation id
is the one the correlation middleware chose for this request
(``shared.process.logging_setup``). The header parameters here also document ``If-Match`` and
``Idempotency-Key`` in the OpenAPI document.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Request

from shared.process.logging_setup import correlation_id as current_correlation_id
from write_side.commands import OrderCommand
from write_side.handlers import CommandResult, OrderCommandBus
from write_side.http.preconditions import (
    IDEMPOTENCY_KEY_FORMAT,
    IDEMPOTENCY_KEY_RULE,
    IF_MATCH_FORMAT,
    checked_idempotency_key,
    expected_version_from_if_match,
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes the command safe to repeat: a repeat with the same key returns "
        f"the first result and writes nothing. {IDEMPOTENCY_KEY_RULE}.",
        examples=["5d0c3a9e-8f1b-4c47-a1d2-9e0b7f6c3a21"],
        json_schema_extra=IDEMPOTENCY_KEY_FORMAT,
    ),
]
IfMatchHeader = Annotated[
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
]


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What every command carries besides its own fields, and the bus that runs it."""

    bus: OrderCommandBus
    expected_version: int | None
    idempotency_key: str | None
    correlation_id: str

    def fields(self) -> dict[str, Any]:
        return {
            "expected_version": self.expected_version,
            "idempotency_key": self.idempotency_key,
            "correlation_id": self.correlation_id,
        }

    async def dispatch(self, command: OrderCommand) -> CommandResult:
        return await self.bus.dispatch(command)


def _bus(request: Request) -> OrderCommandBus:
    return cast(OrderCommandBus, request.app.state.command_bus)


def _correlation_id() -> str:
    # Set by the correlation middleware; a fresh id keeps the router usable without it.
    return current_correlation_id.get() or uuid.uuid4().hex


async def get_create_context(
    request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> CommandContext:
    """The context of the command that creates an order (no order, so no version to pin)."""
    key = checked_idempotency_key(idempotency_key)
    return CommandContext(_bus(request), None, key, _correlation_id())


async def get_command_context(
    request: Request, if_match: IfMatchHeader = None, idempotency_key: IdempotencyKeyHeader = None
) -> CommandContext:
    """The context of a command on an existing order. ``if_match`` documents the header;
    FastAPI hands it only the first line, and RFC 9110 makes all the lines one list, so they
    are read from the request."""
    del if_match
    expected = expected_version_from_if_match(request.headers.getlist("If-Match"))
    key = checked_idempotency_key(idempotency_key)
    return CommandContext(_bus(request), expected, key, _correlation_id())


CreateContext = Annotated[CommandContext, Depends(get_create_context)]
Context = Annotated[CommandContext, Depends(get_command_context)]
