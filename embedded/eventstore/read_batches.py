"""One page of a read or subscription, turned into encoded `ReadResp` messages on a reader thread.

Each function here is one `EventStore.read` call: it fetches a bounded page (`PAGE_SIZE` rows or
`storage.PAGE_BYTES`), applies the filter, resolves links and encodes the messages, so the event
loop only hands ready bytes to gRPC and pays for one thread hop per page, not per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from embedded.eventstore.errors import stream_deleted
from embedded.eventstore.filters import FilterSpec
from embedded.eventstore.read_encoding import checkpoint_message, event_message, link_message
from embedded.eventstore.records import (
    DATA,
    EVENT_TYPE,
    LINK_EVENT_TYPE,
    POSITION,
    REVISION,
    STREAM,
    EventRow,
)
from embedded.eventstore.storage import LogReader

PAGE_SIZE = 256


class Batch(NamedTuple):
    messages: list[bytes]
    last: int  # revision (stream) or position ($all) of the last event scanned; else the start
    more: bool  # the page stopped at a limit: read on after `last`


@dataclass(frozen=True)
class Encoder:
    """How a read wants its events: links resolved or not, ids as strings or structured."""

    resolve_links: bool
    structured_ids: bool

    def message(self, reader: LogReader, row: EventRow) -> bytes:
        if self.resolve_links and row[EVENT_TYPE] == LINK_EVENT_TYPE:
            return link_message(row, _link_target(reader, row), self.structured_ids)
        return event_message(row, self.structured_ids)


def _link_target(reader: LogReader, link: EventRow) -> EventRow | None:
    """The event a link (`$>`, data "revision@stream") points to, unless it is gone or hidden."""
    try:
        revision_text, _, stream = link[DATA].decode("utf-8").partition("@")
        revision = int(revision_text)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    info = reader.readable_stream_info(stream)
    if info.tombstoned or info.soft_deleted or revision < info.first_visible_revision():
        return None
    return reader.event_at(stream, revision)


def stream_batch(
    reader: LogReader,
    encoder: Encoder,
    name: str,
    revision: int,
    *,
    forwards: bool,
    limit: int,
    first: int,
) -> Batch:
    """Events of a stream from `revision` inclusive; a backwards read ends below `first`."""
    page = reader.stream_page(name, revision, forwards, limit)
    messages: list[bytes] = []
    last = revision
    for row in page.rows:
        if row[REVISION] < first:
            return Batch(messages, last, more=False)
        messages.append(encoder.message(reader, row))
        last = row[REVISION]
    return Batch(messages, last, page.more)


def all_batch(
    reader: LogReader,
    encoder: Encoder,
    position: int,
    *,
    forwards: bool,
    inclusive: bool,
    limit: int,
    wanted: int,
    spec: FilterSpec,
) -> Batch:
    """Up to `wanted` events of `$all` that pass the filter, from a page of `limit` rows."""
    page = reader.all_page(position, forwards, inclusive, limit)
    messages: list[bytes] = []
    last = position
    for row in page.rows:
        last = row[POSITION]
        if spec.matches(row[STREAM], row[EVENT_TYPE]):
            messages.append(encoder.message(reader, row))
            if len(messages) >= wanted:
                return Batch(messages, last, more=False)
    return Batch(messages, last, page.more)


class SubscriptionBatch(NamedTuple):
    batch: Batch
    scanned: int  # events scanned since the last checkpoint


def all_subscription_batch(
    reader: LogReader, encoder: Encoder, cursor: int, scanned: int, spec: FilterSpec
) -> SubscriptionBatch:
    """Events of `$all` after `cursor` that pass the filter, with the checkpoints due among them.

    A checkpoint follows every `spec.checkpoint_interval` events scanned (filtered-out ones
    included), at the position of the last one scanned.
    """
    interval = spec.checkpoint_interval
    page = reader.all_page(cursor, True, False, PAGE_SIZE)
    messages: list[bytes] = []
    for row in page.rows:
        cursor = row[POSITION]
        if spec.matches(row[STREAM], row[EVENT_TYPE]):
            messages.append(encoder.message(reader, row))
        if interval is not None:
            scanned += 1
            if scanned >= interval:
                scanned = 0
                messages.append(checkpoint_message(cursor))
    return SubscriptionBatch(Batch(messages, cursor, page.more), scanned)


def stream_subscription_batch(reader: LogReader, encoder: Encoder, name: str, cursor: int) -> Batch:
    """Events of a stream after revision `cursor` that are visible to stream reads.

    Revisions hidden by the stream metadata ($tb, e.g. before an undelete) are skipped; a
    tombstoned stream ends the subscription with the error EventStoreDB sends.
    """
    info = reader.readable_stream_info(name)
    if info.tombstoned:
        raise stream_deleted(name)
    if info.soft_deleted:
        return Batch([], cursor, more=False)
    start = max(cursor + 1, info.first_visible_revision())
    page = reader.stream_page(name, start, True, PAGE_SIZE)
    messages: list[bytes] = []
    for row in page.rows:
        if row[REVISION] > info.last_revision:
            break  # committed after the stream_info above; the next round takes it
        cursor = row[REVISION]
        messages.append(encoder.message(reader, row))
    return Batch(messages, cursor, page.more)
