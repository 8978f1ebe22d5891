"""Conversions between the client's protobuf messages and the server's records."""

from __future__ import annotations

import uuid
from typing import Any

from esdbclient.protos.Grpc import shared_pb2, streams_pb2

from embedded.eventstore.errors import invalid_argument
from embedded.eventstore.expected_revision import Expected, ExpectedState
from embedded.eventstore.records import ProposedEvent

JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"


def stream_name(identifier: shared_pb2.StreamIdentifier) -> str:
    try:
        name = identifier.stream_name.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid_argument("Stream name is not valid UTF-8.") from error
    if not name:
        raise invalid_argument("Stream name must not be empty.")
    return name


def expected_revision(options: Any, exact_field: str) -> Expected:
    """The expectation of Append/BatchAppend/Delete/Tombstone options (`exact_field`: the int)."""
    oneof = options.DESCRIPTOR.fields_by_name[exact_field].containing_oneof.name
    which = options.WhichOneof(oneof)
    if which == exact_field:
        return int(getattr(options, exact_field))
    if which == "any":
        return ExpectedState.ANY
    if which == "no_stream":
        return ExpectedState.NO_STREAM
    if which == "stream_exists":
        return ExpectedState.STREAM_EXISTS
    raise invalid_argument(f"Expected stream revision is required ({oneof} not set).")


def parse_uuid(message: shared_pb2.UUID) -> str:
    """An event id in EventStoreDB's canonical form (lower-case, hyphenated)."""
    which = message.WhichOneof("value")
    try:
        if which == "string":
            return str(uuid.UUID(message.string))
        if which == "structured":
            high = message.structured.most_significant_bits & (2**64 - 1)
            low = message.structured.least_significant_bits & (2**64 - 1)
            return str(uuid.UUID(int=(high << 64) | low))
    except ValueError as error:
        raise invalid_argument(f"Invalid event id {message.string!r}.") from error
    raise invalid_argument("Event id is required.")


def proposed_event(message: Any) -> ProposedEvent:
    """An AppendReq/BatchAppendReq ProposedMessage; `type` and `content-type` are required."""
    event_id = parse_uuid(message.id)
    metadata = message.metadata
    for key in ("type", "content-type"):
        if key not in metadata:
            raise invalid_argument(f"Required Metadata Property '{key}' is missing")
    return ProposedEvent(
        event_id=event_id,
        event_type=metadata["type"],
        is_json=metadata["content-type"] == JSON_CONTENT_TYPE,
        custom_metadata=bytes(message.custom_metadata),
        data=bytes(message.data),
    )


def checkpoint(position: int) -> streams_pb2.ReadResp:
    return streams_pb2.ReadResp(
        checkpoint=streams_pb2.ReadResp.Checkpoint(
            commit_position=position, prepare_position=position
        )
    )


def confirmation(subscription_id: str) -> streams_pb2.ReadResp:
    return streams_pb2.ReadResp(
        confirmation=streams_pb2.ReadResp.SubscriptionConfirmation(subscription_id=subscription_id)
    )


def caught_up() -> streams_pb2.ReadResp:
    return streams_pb2.ReadResp(caught_up=streams_pb2.ReadResp.CaughtUp())


def stream_not_found(name: str) -> streams_pb2.ReadResp:
    return streams_pb2.ReadResp(
        stream_not_found=streams_pb2.ReadResp.StreamNotFound(
            stream_identifier=shared_pb2.StreamIdentifier(stream_name=name.encode("utf-8"))
        )
    )
