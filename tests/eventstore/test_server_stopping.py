"""A call still reading requests when the server stops (a BatchAppend stream a client keeps open
between appends) ends with the server: the guards let grpc's own ``_ServerStoppedError`` through
to grpc, which reports it in one line, instead of logging an unexpected error with a traceback
and answering a client that is no longer there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpc._cython import cygrpc

from embedded.eventstore.errors import guard_stream, guard_unary


class Context:
    """A servicer context that records aborts."""

    def __init__(self) -> None:
        self.aborted: list[Any] = []

    async def abort(self, *details: Any) -> None:
        self.aborted.append(details)
        raise AssertionError("aborted")


class Service:
    @guard_stream
    async def BatchAppend(self, requests: Any, context: Any) -> AsyncIterator[str]:
        yield "first"
        raise cygrpc._ServerStoppedError("Server already stopped.")

    @guard_unary
    async def Append(self, requests: Any, context: Any) -> str:
        raise cygrpc._ServerStoppedError("Server already stopped.")


async def test_a_stream_cut_by_the_server_stopping_is_neither_logged_nor_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = Context()
    received = []
    with pytest.raises(cygrpc._ServerStoppedError):
        async for response in Service().BatchAppend(None, context):
            received.append(response)
    assert received == ["first"]
    assert context.aborted == [] and caplog.records == []


async def test_a_unary_call_cut_by_the_server_stopping_is_neither_logged_nor_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = Context()
    with pytest.raises(cygrpc._ServerStoppedError):
        await Service().Append(None, context)
    assert context.aborted == [] and caplog.records == []
