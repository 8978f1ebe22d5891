"""Plain records passed between the gRPC services and the SQLite storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from embedded.eventstore.expected_revision import NO_REVISION, TOMBSTONE_REVISION, StreamFacts

LINK_EVENT_TYPE = "$>"
METADATA_EVENT_TYPE = "$metadata"
TOMBSTONE_EVENT_TYPE = "$streamDeleted"
METASTREAM_PREFIX = "$$"


def metastream_of(stream: str) -> str:
    return METASTREAM_PREFIX + stream


def original_stream_of(stream: str) -> str | None:
    """The stream whose metadata `stream` holds, if it is a metastream (`$$name`)."""
    return stream.removeprefix(METASTREAM_PREFIX) if stream.startswith(METASTREAM_PREFIX) else None


def append_size(data: bytes, custom_metadata: bytes, event_type: str) -> int:
    """An event's size as EventStoreDB counts it against the maximum append size."""
    return len(data) + len(custom_metadata) + 2 * len(event_type)


@dataclass(frozen=True)
class ProposedEvent:
    """An event as a client proposes it, before it has a revision and a position."""

    event_id: str
    event_type: str
    is_json: bool
    custom_metadata: bytes
    data: bytes

    def size(self) -> int:
        return append_size(self.data, self.custom_metadata, self.event_type)


# An event in the log, as a row of `storage.EVENT_COLUMNS`: (position, stream, revision,
# event_id, event_type, is_json, created, custom_metadata, data). Reads handle plain tuples, not
# objects, because they pass tens of thousands of them per second straight to the encoder.
# Its commit and prepare positions are both `position`; `created` is in .NET ticks (100 ns)
# since the Unix epoch.
EventRow = tuple[int, str, int, str, str, int, int, bytes, bytes]
POSITION: Final = 0
STREAM: Final = 1
REVISION: Final = 2
EVENT_TYPE: Final = 4
CUSTOM_METADATA: Final = 7
DATA: Final = 8


@dataclass(frozen=True)
class StreamInfo:
    """A stream's row: where it ends and what its metadata hides."""

    name: str
    last_revision: int = NO_REVISION
    truncate_before: int | None = None  # "$tb" of the stream metadata
    max_count: int | None = None  # "$maxCount" of the stream metadata
    tombstoned: bool = False

    @property
    def exists(self) -> bool:
        return self.last_revision != NO_REVISION

    @property
    def soft_deleted(self) -> bool:
        return self.truncate_before == TOMBSTONE_REVISION

    def first_visible_revision(self) -> int:
        """Revisions below this are hidden from stream reads by the stream metadata."""
        first = self.truncate_before or 0
        if self.max_count is not None:
            first = max(first, self.last_revision - self.max_count + 1)
        return first

    def facts(self, has_metadata: bool) -> StreamFacts:
        return StreamFacts(
            last_revision=self.last_revision,
            tombstoned=self.tombstoned,
            soft_deleted=self.soft_deleted,
            has_metadata=has_metadata,
        )


@dataclass(frozen=True)
class WriteResult:
    """Outcome of an append, delete or tombstone, as the services report it.

    `revision`/`position` describe the last event written (or matched, for an idempotent retry);
    `revision` is the stream's current revision for a wrong-expected-version answer (-1: none).
    `position` is None when nothing has a position (an empty append).
    """

    kind: str  # "ok", "wrong_version", "deleted", "timeout"
    revision: int = NO_REVISION
    position: int | None = None


WRITE_DELETED = WriteResult("deleted")
WRITE_TIMEOUT = WriteResult("timeout")
