"""`ReadResp` messages for events, encoded by hand straight from SQLite rows to bytes.

Reads and catch-up subscriptions send one `ReadResp` per event. Building it as nested upb
messages (with a three-entry map) and serialising it cost more than everything else the server
did per event, so the reader threads encode the protobuf wire format directly from the row and
the `Read` handler sends the bytes as they are (see `streams_service.add_streams_service`).

The bytes parse to exactly the message the protobuf classes would build: fields in field-number
order and, as protobuf does for proto3 scalars, zeros and empty byte strings left out (the
`commit_position` of `ReadEvent` is in a oneof, so it is always written). int64 fields (the
structured UUID halves) hold negative values as the varint of their two's complement.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from embedded.eventstore.records import POSITION, EventRow
from embedded.eventstore.wire import BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE

_SMALL = 1 << 14  # varints of up to two bytes come from a table
_UINT64 = 2**64 - 1
# Encodings repeated across events; bounded so a log with many streams cannot grow them forever.
_CACHE_LIMIT = 4096
_streams: dict[str, bytes] = {}
_kinds: dict[tuple[str, bool], bytes] = {}
_created: dict[int, bytes] = {}


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer below 2**64."""
    if value < _SMALL:
        return _small_varints()[value]
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


@functools.cache
def _small_varints() -> list[bytes]:
    """Built on first use rather than at import."""
    return [bytes((value,)) for value in range(0x80)] + [
        bytes((value & 0x7F | 0x80, value >> 7)) for value in range(0x80, _SMALL)
    ]


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def _remember(cache: dict[Any, bytes], key: Any, value: bytes) -> bytes:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _stream_field(stream: str) -> bytes:
    """`stream_identifier` (2) of RecordedEvent: StreamIdentifier{stream_name (3)}."""
    field = _streams.get(stream)
    if field is None:
        field = _remember(
            _streams, stream, _delimited(b"\x12", _delimited(b"\x1a", stream.encode("utf-8")))
        )
    return field


def _kind_fields(event_type: str, is_json: bool) -> bytes:
    """The "type" and "content-type" entries of the `metadata` map (6)."""
    key = (event_type, is_json)
    fields = _kinds.get(key)
    if fields is None:
        content_type = JSON_CONTENT_TYPE if is_json else BINARY_CONTENT_TYPE
        fields = _remember(
            _kinds, key, _map_entry(b"type", event_type) + _map_entry(b"content-type", content_type)
        )
    return fields


def _map_entry(key: bytes, value: str) -> bytes:
    return _delimited(b"\x32", _delimited(b"\x0a", key) + _delimited(b"\x12", value.encode()))


def _created_entry(created: int) -> bytes:
    """The "created" entry of the `metadata` map; the events of one append share it."""
    entry = _created.get(created)
    if entry is None:
        entry = _remember(_created, created, _map_entry(b"created", str(created)))
    return entry


def _id_field(event_id: str, structured: bool) -> bytes:
    """`id` (1) of RecordedEvent: UUID{string (2)} or UUID{structured (1)}."""
    if not structured:
        if len(event_id) == 36:  # the canonical form: the lengths are known
            return b"\x0a\x26\x12\x24" + event_id.encode("ascii")
        return _delimited(b"\x0a", _delimited(b"\x12", event_id.encode("ascii")))
    value = uuid.UUID(event_id).int
    high, low = value >> 64, value & _UINT64
    bits = (b"\x08" + varint(high) if high else b"") + (b"\x10" + varint(low) if low else b"")
    return _delimited(b"\x0a", _delimited(b"\x0a", bits))


def _recorded_parts(row: EventRow, structured: bool) -> list[bytes]:
    """The fields of a RecordedEvent, to be joined after a length prefix."""
    position, stream, revision, event_id, event_type, is_json, created, custom, data = row
    parts = [_id_field(event_id, structured), _stream_field(stream)]
    if revision:
        parts += (b"\x18", varint(revision))
    if position:
        encoded = varint(position)
        parts += (b"\x20", encoded, b"\x28", encoded)
    parts += (_kind_fields(event_type, bool(is_json)), _created_entry(created))
    if custom:
        parts += (b"\x3a", varint(len(custom)), custom)
    if data:
        parts += (b"\x42", varint(len(data)), data)
    return parts


def _embed(tag: bytes, parts: list[bytes], into: list[bytes]) -> int:
    """Append `parts` to `into` as one length-delimited field; returns the bytes added."""
    size = sum(map(len, parts))
    header = tag + varint(size)
    into.append(header)
    into += parts
    return len(header) + size


def event_message(row: EventRow, structured: bool) -> bytes:
    """ReadResp{event: ReadEvent{event: the row, commit_position}} for an event as stored."""
    read_event: list[bytes] = []
    size = _embed(b"\x0a", _recorded_parts(row, structured), read_event)
    position = varint(row[POSITION])
    read_event += (b"\x18", position)
    return b"".join((b"\x0a", varint(size + 1 + len(position)), *read_event))


def link_message(link: EventRow, target: EventRow | None, structured: bool) -> bytes:
    """ReadResp for a resolved link: the target (if it still exists) as `event`, the link as
    `link`; without a target EventStoreDB sends the link alone and the client skips it."""
    read_event: list[bytes] = []
    size = 0
    if target is not None:
        size += _embed(b"\x0a", _recorded_parts(target, structured), read_event)
    size += _embed(b"\x12", _recorded_parts(link, structured), read_event)
    position = varint(link[POSITION])
    read_event += (b"\x18", position)
    return b"".join((b"\x0a", varint(size + 1 + len(position)), *read_event))


def checkpoint_message(position: int) -> bytes:
    """ReadResp{checkpoint: Checkpoint{commit_position, prepare_position}}."""
    encoded = varint(position)
    body = b"\x08" + encoded + b"\x10" + encoded if position else b""
    return _delimited(b"\x1a", body)
