"""How Append and BatchAppend answer: success, wrong expected version, deleted, timeout, ...

Append answers a version conflict inside `AppendResp`, and a deleted stream with
FAILED_PRECONDITION. BatchAppend answers every failure inside `BatchAppendResp.error`, a
`google.rpc.Status` whose `details` names the reason by type
(`type.googleapis.com/event_store.client.<Name>`); the client dispatches on that type.
"""

from __future__ import annotations

import time

import grpc
from esdbclient.protos.Grpc import shared_pb2, status_pb2, streams_pb2
from google.protobuf import any_pb2, empty_pb2
from google.protobuf.message import Message

from embedded.eventstore.expected_revision import (
    NO_REVISION,
    Expected,
    ExpectedState,
    legacy_number,
)
from embedded.eventstore.records import WriteResult

MAX_APPEND_SIZE = 1024 * 1024  # EventStoreDB's default MaxAppendSize

AppendResp = streams_pb2.AppendResp
BatchAppendResp = streams_pb2.BatchAppendResp


def _fill_success(
    success: AppendResp.Success | BatchAppendResp.Success, result: WriteResult
) -> None:
    """Both RPCs' success messages carry the same fields: revision (or none) and position."""
    if result.revision == NO_REVISION:
        success.no_stream.SetInParent()
    else:
        success.current_revision = result.revision
    if result.position is None:
        success.no_position.SetInParent()
    else:
        success.position.commit_position = result.position
        success.position.prepare_position = result.position


def append_success(result: WriteResult) -> AppendResp:
    success = AppendResp.Success()
    _fill_success(success, result)
    return AppendResp(success=success)


def append_wrong_expected_version(current: int, expected: Expected) -> AppendResp:
    """Both the current fields and the 20.6.0 ones, as EventStoreDB fills them."""
    wrong = AppendResp.WrongExpectedVersion()
    if current == NO_REVISION:
        wrong.current_no_stream.SetInParent()
        wrong.no_stream_20_6_0.SetInParent()
    else:
        wrong.current_revision = current
        wrong.current_revision_20_6_0 = current
    if isinstance(expected, int):
        wrong.expected_revision = expected
        wrong.expected_revision_20_6_0 = expected
    elif expected is ExpectedState.ANY:
        wrong.expected_any.SetInParent()
        wrong.any_20_6_0.SetInParent()
    elif expected is ExpectedState.STREAM_EXISTS:
        wrong.expected_stream_exists.SetInParent()
        wrong.stream_exists_20_6_0.SetInParent()
    else:
        wrong.expected_no_stream.SetInParent()
    return AppendResp(wrong_expected_version=wrong)


def batch_deadline(options: streams_pb2.BatchAppendReq.Options, received: float) -> float | None:
    """The monotonic time by which the append must have started (None: no deadline)."""
    which = options.WhichOneof("deadline_option")
    if which == "deadline":
        return float(received + options.deadline.seconds + options.deadline.nanos / 1e9)
    if which == "deadline_21_10_0":
        timestamp = options.deadline_21_10_0
        remaining = float(timestamp.seconds + timestamp.nanos / 1e9 - time.time())
        return received + remaining
    return None


class BatchAnswer:
    """Builds the BatchAppendResp of one batch (identified by its correlation id)."""

    def __init__(
        self, request: streams_pb2.BatchAppendReq, stream: str | None, expected: Expected | None
    ) -> None:
        self.response = BatchAppendResp()
        self.response.correlation_id.CopyFrom(request.correlation_id)
        self.stream = stream
        self.expected = expected
        if stream is not None:
            self.response.stream_identifier.stream_name = stream.encode("utf-8")
        if isinstance(expected, int):
            self.response.stream_position = expected
        elif expected is ExpectedState.ANY:
            self.response.any.SetInParent()
        elif expected is ExpectedState.NO_STREAM:
            self.response.no_stream.SetInParent()
        elif expected is ExpectedState.STREAM_EXISTS:
            self.response.stream_exists.SetInParent()

    def success(self, result: WriteResult) -> BatchAppendResp:
        _fill_success(self.response.success, result)
        return self.response

    def wrong_expected_version(self, current: int) -> BatchAppendResp:
        detail = shared_pb2.WrongExpectedVersion()
        if current == NO_REVISION:
            detail.current_no_stream.SetInParent()
        else:
            detail.current_stream_revision = current
        expected = self.expected
        if isinstance(expected, int):
            detail.expected_stream_position = expected
        elif expected is ExpectedState.ANY:
            detail.expected_any.CopyFrom(empty_pb2.Empty())
        elif expected is ExpectedState.STREAM_EXISTS:
            detail.expected_stream_exists.CopyFrom(empty_pb2.Empty())
        else:
            detail.expected_no_stream.CopyFrom(empty_pb2.Empty())
        expected_number = legacy_number(expected) if expected is not None else NO_REVISION
        message = (
            f"Append failed due to WrongExpectedVersion. Stream: {self.stream},"
            f" Expected version: {expected_number}, Actual version: {current}"
        )
        return self.error(grpc.StatusCode.FAILED_PRECONDITION, message, detail)

    def stream_deleted(self) -> BatchAppendResp:
        detail = shared_pb2.StreamDeleted()
        detail.stream_identifier.stream_name = (self.stream or "").encode("utf-8")
        message = f"Event stream '{self.stream}' is deleted."
        return self.error(grpc.StatusCode.FAILED_PRECONDITION, message, detail)

    def timeout(self) -> BatchAppendResp:
        return self.error(grpc.StatusCode.DEADLINE_EXCEEDED, "Timeout", shared_pb2.Timeout())

    def too_big(self) -> BatchAppendResp:
        detail = shared_pb2.MaximumAppendSizeExceeded(maxAppendSize=MAX_APPEND_SIZE)
        message = f"Maximum Append Size of {MAX_APPEND_SIZE} Exceeded."
        return self.error(grpc.StatusCode.INVALID_ARGUMENT, message, detail)

    def bad_request(self, message: str) -> BatchAppendResp:
        detail = shared_pb2.BadRequest(message=message)
        return self.error(grpc.StatusCode.INVALID_ARGUMENT, message, detail)

    def error(self, code: grpc.StatusCode, message: str, detail: Message) -> BatchAppendResp:
        details = any_pb2.Any()
        details.Pack(detail)
        self.response.error.CopyFrom(
            status_pb2.Status(code=code.value[0], message=message, details=details)
        )
        return self.response
