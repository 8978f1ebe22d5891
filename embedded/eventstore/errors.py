"""Failures answered on purpose, and guards so nothing else escapes a handler as UNKNOWN.

Service code raises `RpcFailure` with the status code and text EventStoreDB would send; the
guards turn it into `context.abort`. Any other exception is a bug: it is logged with its
traceback and answered as INTERNAL, which the client maps to `InternalError`, instead of the
UNKNOWN that grpcio would send by itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from embedded.eventstore.expected_revision import Expected, legacy_number

log = logging.getLogger("embedded.eventstore")


class RpcFailure(Exception):
    """A deliberate gRPC error status, with EventStoreDB's `exception` trailer when it has one."""

    def __init__(
        self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailers = trailers


def _header_safe(value: str) -> str:
    """Trailer values must be printable ASCII; other names are sent as "?"."""
    return value if value.isascii() and value.isprintable() else "?"


def invalid_argument(details: str) -> RpcFailure:
    return RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, details)


def stream_deleted(stream: str) -> RpcFailure:
    return RpcFailure(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Event stream '{stream}' is deleted.",
        (("exception", "stream-deleted"), ("stream-name", _header_safe(stream))),
    )


def delete_wrong_expected_version(stream: str, expected: Expected, actual: int) -> RpcFailure:
    """Delete and tombstone report a version conflict as an error, not as a message."""
    expected_number = legacy_number(expected)
    return RpcFailure(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Delete failed due to WrongExpectedVersion. Stream: {stream},"
        f" Expected version: {expected_number}, Actual version: {actual}",
        (
            ("exception", "wrong-expected-version"),
            ("stream-name", _header_safe(stream)),
            ("expected-version", str(expected_number)),
            ("actual-version", str(actual)),
        ),
    )


def maximum_append_size_exceeded(limit: int) -> RpcFailure:
    return RpcFailure(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Maximum Append Size of {limit} Exceeded.",
        (("exception", "maximum-append-size-exceeded"), ("maximum-append-size", str(limit))),
    )


def invalid_read_position(filtered: bool) -> RpcFailure:
    """An `$all` read from a position inside the log where no event starts.

    EventStoreDB 24.10's enumerators end any read result but Success and AccessDenied with
    UNKNOWN "Unexpected <result type>: <result>" (22.10 and 23.10 said "...: Error" here).
    """
    result = "FilteredReadAllResult" if filtered else "ReadAllResult"
    return RpcFailure(grpc.StatusCode.UNKNOWN, f"Unexpected {result}: InvalidPosition")


def invalid_subscription_position() -> RpcFailure:
    """An `$all` subscription from such a position: EventStoreDB 24.10's
    RpcExceptions.InvalidPositionException, sent after the confirmation."""
    return RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "Trying to read from an invalid position.")


def _server_stopping(error: Exception) -> bool:
    """grpc.aio raises its private ``_ServerStoppedError`` into a call still reading requests
    when the server stops (a client's BatchAppend kept open between appends): the call ends with
    the server, and grpc reports that in one line of its own. Not a fault to log with a
    traceback, nor a status to send: nobody is left to receive it."""
    return type(error).__name__ == "_ServerStoppedError"


async def _answer(context: grpc.aio.ServicerContext, rpc: str, error: BaseException) -> None:
    """Abort the call with a deliberate status for `error` (raises grpc.aio.AbortError)."""
    if isinstance(error, RpcFailure):
        await context.abort(error.code, error.details, error.trailers)
    log.error("unexpected error in %s", rpc, exc_info=error)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"Internal error in {rpc}: {type(error).__name__}: {error}"
    )


def guard_unary[Request, Response](
    method: Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Response]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Response]]:
    """Wrap a handler that returns one response (unary or client-streaming)."""

    @functools.wraps(method)
    async def guarded(self: Any, request: Request, context: grpc.aio.ServicerContext) -> Response:
        try:
            return await method(self, request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as error:
            if _server_stopping(error):
                raise
            await _answer(context, method.__name__, error)
            raise  # unreachable: abort raises

    return guarded


def guard_stream[Request, Response](
    method: Callable[[Any, Request, grpc.aio.ServicerContext], AsyncIterator[Response]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext], AsyncIterator[Response]]:
    """Wrap a handler that yields responses (server- or bidi-streaming)."""

    @functools.wraps(method)
    async def guarded(
        self: Any, request: Request, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Response]:
        try:
            async for response in method(self, request, context):
                yield response
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as error:
            if _server_stopping(error):
                raise
            await _answer(context, method.__name__, error)

    return guarded
