"""Finite reads (`Streams.Read` with a count): one stream, or `$all`, either direction.

Both page through SQLite from a cursor, so a read of the whole log never holds it in memory.
Position rules: a stream read includes its start revision in both directions; an `$all` read
forwards from P includes P, backwards from P excludes it. An `$all` filter applies before the
count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from esdbclient.protos.Grpc import streams_pb2

from embedded.eventstore import wire
from embedded.eventstore.errors import invalid_argument, stream_deleted
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.filters import FilterSpec, filter_spec
from embedded.eventstore.records import LINK_EVENT_TYPE, StoredEvent
from embedded.eventstore.storage import LogReader

PAGE_SIZE = 256
Options = streams_pb2.ReadReq.Options
_LAST_POSITION = 2**63 - 1


@dataclass(frozen=True)
class ReadRequest:
    """A validated ReadReq.

    `start` is "start", "end" or "at"; with "at", `point` is the revision or the position.
    """

    stream: str | None  # None: $all
    forwards: bool
    start: str
    point: int
    count: int | None  # None: a subscription
    resolve_links: bool
    structured_ids: bool
    filter: FilterSpec


def parse_read_request(request: streams_pb2.ReadReq) -> ReadRequest:
    """Check the combination of options as EventStoreDB does (INVALID_ARGUMENT otherwise)."""
    options = request.options
    source = options.WhichOneof("stream_option")
    count_option = options.WhichOneof("count_option")
    if source not in ("stream", "all") or count_option not in ("count", "subscription"):
        raise invalid_argument(
            f"The combination of ({source}, {count_option}, {options.read_direction},"
            f" {options.WhichOneof('filter_option')}) is invalid."
        )
    if options.read_direction not in (Options.Forwards, Options.Backwards):
        raise invalid_argument(f"Unknown read direction {options.read_direction}.")
    forwards = options.read_direction == Options.Forwards
    subscription = count_option == "subscription"
    if subscription and not forwards:
        raise invalid_argument("Subscriptions can only read forwards.")
    if source == "stream":
        if options.WhichOneof("filter_option") == "filter":
            raise invalid_argument("Filters apply to $all only, not to a stream.")
        stream: str | None = wire.stream_name(options.stream.stream_identifier)
        start: str | None = options.stream.WhichOneof("revision_option")
        point = options.stream.revision
    else:
        stream = None
        start = options.all.WhichOneof("all_option")
        point = options.all.position.commit_position
    if start is None:
        raise invalid_argument("Read start (revision/position, start or end) is required.")
    return ReadRequest(
        stream=stream,
        forwards=forwards,
        start="at" if start in ("revision", "position") else start,
        point=min(point, _LAST_POSITION),  # uint64 on the wire; SQLite integers are int64
        count=None if subscription else options.count,
        resolve_links=options.resolve_links,
        structured_ids=options.uuid_option.WhichOneof("content") == "structured",
        filter=filter_spec(options, subscription),
    )


@dataclass(frozen=True)
class PageItem:
    """An event from the log, with the target it links to when links are resolved."""

    event: StoredEvent
    target: StoredEvent | None = None
    is_link: bool = False

    def message(self, structured_ids: bool) -> streams_pb2.ReadResp:
        return wire.read_event(self.event, self.target, self.is_link, structured_ids)


def with_links(reader: LogReader, events: Sequence[StoredEvent], resolve: bool) -> list[PageItem]:
    """Pair each link event (`$>`, data "revision@stream") with its target when resolving."""
    if not resolve:
        return [PageItem(event) for event in events]
    return [
        PageItem(event, _link_target(reader, event), True)
        if event.event_type == LINK_EVENT_TYPE
        else PageItem(event)
        for event in events
    ]


class ItemPage(NamedTuple):
    items: list[PageItem]
    more: bool  # the page stopped at a limit: read on from its last item


def stream_page_items(
    reader: LogReader, name: str, revision: int, *, forwards: bool, limit: int, resolve: bool
) -> ItemPage:
    page = reader.stream_page(name, revision, forwards, limit)
    return ItemPage(with_links(reader, page.events, resolve), page.more)


def all_page_items(
    reader: LogReader,
    position: int,
    *,
    forwards: bool,
    inclusive: bool,
    limit: int,
    resolve: bool,
) -> ItemPage:
    page = reader.all_page(position, forwards, inclusive, limit)
    return ItemPage(with_links(reader, page.events, resolve), page.more)


def _link_target(reader: LogReader, link: StoredEvent) -> StoredEvent | None:
    try:
        revision_text, _, stream = link.data.decode("utf-8").partition("@")
        revision = int(revision_text)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    info = reader.stream_info(stream)
    if info.tombstoned or info.soft_deleted or revision < info.first_visible_revision():
        return None
    return reader.event_at(stream, revision)


async def read_stream(
    store: EventStore, request: ReadRequest
) -> AsyncIterator[streams_pb2.ReadResp]:
    name = request.stream
    assert name is not None and request.count is not None
    info = await store.read(LogReader.stream_info, name)
    if info.tombstoned:
        raise stream_deleted(name)
    if not info.exists or info.soft_deleted:
        yield wire.stream_not_found(name)
        return
    first = info.first_visible_revision()
    if request.start == "at":
        cursor = request.point
    elif request.start == "start":
        cursor = 0
    else:
        cursor = info.last_revision if not request.forwards else info.last_revision + 1
    if request.forwards:
        cursor = max(cursor, first)
    remaining = request.count
    while remaining > 0 and cursor >= first:
        limit = min(PAGE_SIZE, remaining)
        page = await store.read(
            stream_page_items,
            name,
            cursor,
            forwards=request.forwards,
            limit=limit,
            resolve=request.resolve_links,
        )
        for item in page.items:
            if item.event.revision < first:
                return
            yield item.message(request.structured_ids)
        remaining -= len(page.items)
        if not page.more:
            return
        cursor = page.items[-1].event.revision + (1 if request.forwards else -1)


async def read_all(store: EventStore, request: ReadRequest) -> AsyncIterator[streams_pb2.ReadResp]:
    assert request.count is not None
    if request.start == "at":
        cursor, inclusive = request.point, request.forwards
    elif request.start == "start":
        cursor, inclusive = 0, True
    else:
        cursor, inclusive = _LAST_POSITION, True
    if request.forwards == (request.start == "end") and request.start != "at":
        return  # forwards from the end, or backwards from the start: nothing to read
    remaining = request.count
    while remaining > 0:
        page = await store.read(
            all_page_items,
            cursor,
            forwards=request.forwards,
            inclusive=inclusive,
            limit=PAGE_SIZE,
            resolve=request.resolve_links,
        )
        for item in page.items:
            if request.filter.matches(item.event):
                yield item.message(request.structured_ids)
                remaining -= 1
                if remaining == 0:
                    return
        if not page.more:
            return
        cursor, inclusive = page.items[-1].event.position, False
