"""Finite reads (`Streams.Read` with a count): one stream, or `$all`, either direction.

Both page through SQLite from a cursor, so a read of the whole log never holds it in memory; each
page is filtered and encoded on a reader thread (`read_batches`) and yielded as one list.
Position rules: a stream read includes its start revision in both directions; an `$all` read
forwards from P includes P, backwards from P excludes it. An `$all` filter applies before the
count. An `$all` read from a position inside the log where no event starts fails, as in
EventStoreDB (see `LogReader.is_read_start`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from esdbclient.protos.Grpc import streams_pb2

from embedded.eventstore import wire
from embedded.eventstore.errors import invalid_argument, invalid_read_position, stream_deleted
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.filters import FilterSpec, filter_spec
from embedded.eventstore.read_batches import PAGE_SIZE, Batch, Encoder, all_batch, stream_batch
from embedded.eventstore.records import StreamInfo
from embedded.eventstore.storage import LogReader

Options = streams_pb2.ReadReq.Options
_LAST_POSITION = 2**63 - 1
SMALL_PAGE = 32


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
    filtered: bool  # sent a filter option (EventStoreDB then reads with its filtered reader)


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
        filtered=options.WhichOneof("filter_option") == "filter",
    )


def _open_stream(
    reader: LogReader, encoder: Encoder, request: ReadRequest
) -> tuple[StreamInfo, Batch | None]:
    """On a reader thread: the stream's row and the first page of the read (None: no page)."""
    name = request.stream
    assert name is not None and request.count is not None
    info = reader.readable_stream_info(name)
    if info.tombstoned or not info.exists or info.soft_deleted:
        return info, None
    first = info.first_visible_revision()
    if request.start == "at":
        cursor = request.point
    elif request.start == "start":
        cursor = 0
    else:
        cursor = info.last_revision if not request.forwards else info.last_revision + 1
    if request.forwards:
        cursor = max(cursor, first)
    if request.count <= 0 or cursor < first:
        return info, None
    limit = min(PAGE_SIZE, request.count)
    return info, stream_batch(
        reader, encoder, name, cursor, forwards=request.forwards, limit=limit, first=first
    )


async def read_stream(
    store: EventStore, request: ReadRequest
) -> AsyncIterator[list[streams_pb2.ReadResp | bytes]]:
    """The messages of a stream read, a page at a time."""
    name = request.stream
    assert name is not None and request.count is not None
    encoder = Encoder(request.resolve_links, request.structured_ids)
    info, batch = await store.read(_open_stream, encoder, request)
    if info.tombstoned:
        raise stream_deleted(name)
    if not info.exists or info.soft_deleted:
        yield [wire.stream_not_found(name)]
        return
    first = info.first_visible_revision()
    remaining = request.count
    while batch is not None:
        yield batch.messages
        remaining -= len(batch.messages)
        cursor = batch.last + (1 if request.forwards else -1)
        if not batch.more or remaining <= 0 or cursor < first:
            return
        batch = await store.read(
            stream_batch,
            encoder,
            name,
            cursor,
            forwards=request.forwards,
            limit=min(PAGE_SIZE, remaining),
            first=first,
        )


def _page_limit(request: ReadRequest, remaining: int, first_page: bool) -> int:
    """Rows to fetch for a page of an `$all` read.

    Unfiltered, every row counts: no more than the read still wants. Filtered, any number of
    rows may be skipped, so pages are full, except a first page for a few events (as
    get_commit_position asks for one): the newest rows usually match, so it starts small.
    """
    if request.filter.event_filter is None:
        return min(PAGE_SIZE, remaining)
    return min(PAGE_SIZE, max(remaining, SMALL_PAGE)) if first_page else PAGE_SIZE


async def read_all(
    store: EventStore, request: ReadRequest
) -> AsyncIterator[list[streams_pb2.ReadResp | bytes]]:
    """The messages of an `$all` read, a page at a time."""
    assert request.count is not None
    if request.start == "at":
        cursor, inclusive = request.point, request.forwards
    elif request.start == "start":
        cursor, inclusive = 0, True
    else:
        cursor, inclusive = _LAST_POSITION, True
    if request.forwards == (request.start == "end") and request.start != "at":
        return  # forwards from the end, or backwards from the start: nothing to read
    if request.start == "at" and not await store.read(LogReader.is_read_start, cursor):
        raise invalid_read_position(request.filtered)
    encoder = Encoder(request.resolve_links, request.structured_ids)
    remaining = request.count
    first_page = True
    while remaining > 0:
        batch = await store.read(
            all_batch,
            encoder,
            cursor,
            forwards=request.forwards,
            inclusive=inclusive,
            limit=_page_limit(request, remaining, first_page),
            wanted=remaining,
            spec=request.filter,
        )
        yield batch.messages
        remaining -= len(batch.messages)
        if not batch.more:
            return
        cursor, inclusive, first_page = batch.last, False, False
