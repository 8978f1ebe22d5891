"""Catch-up subscriptions to one stream or to `$all`: confirmation, catch-up, caught_up, live.

Each subscription pages through the log from its own cursor and, once it has read everything
committed, waits on the store's `CommitSignal` and re-queries. Nothing is buffered for it, so a
slow subscriber only delays itself (gRPC flow control holds its `yield`), never writers or
other subscribers.

Start points are exclusive: from revision R a stream subscription delivers revisions above R,
from position P an `$all` subscription delivers positions above P; "end" means live events only.
With a filter, a checkpoint follows every `window x multiplier` events scanned (filtered-out
ones included), at the position of the last event scanned, in catch-up and live alike.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from esdbclient.protos.Grpc import streams_pb2

from embedded.eventstore import wire
from embedded.eventstore.errors import stream_deleted
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.reads import (
    PAGE_SIZE,
    ItemPage,
    ReadRequest,
    all_page_items,
    stream_page_items,
)
from embedded.eventstore.storage import LogReader


async def subscribe(store: EventStore, request: ReadRequest) -> AsyncIterator[streams_pb2.ReadResp]:
    yield wire.confirmation(str(uuid.uuid4()))
    messages = _stream_messages(store, request) if request.stream else _all_messages(store, request)
    async for message in messages:
        yield message


async def _all_messages(
    store: EventStore, request: ReadRequest
) -> AsyncIterator[streams_pb2.ReadResp]:
    if request.start == "at":
        cursor = request.point
    elif request.start == "start":
        cursor = -1
    else:
        cursor = store.commits.head
    interval = request.filter.checkpoint_interval
    scanned = 0
    caught_up = False
    while True:
        seen_head = store.commits.head
        page = await store.read(
            all_page_items,
            cursor,
            forwards=True,
            inclusive=False,
            limit=PAGE_SIZE,
            resolve=request.resolve_links,
        )
        for item in page.items:
            cursor = item.event.position
            if request.filter.matches(item.event):
                yield item.message(request.structured_ids)
            if interval is not None:
                scanned += 1
                if scanned >= interval:
                    scanned = 0
                    yield wire.checkpoint(cursor)
        if not page.more:
            if not caught_up:
                caught_up = True
                yield wire.caught_up()
            await store.commits.wait_beyond(max(seen_head, cursor))


async def _stream_messages(
    store: EventStore, request: ReadRequest
) -> AsyncIterator[streams_pb2.ReadResp]:
    name = request.stream
    assert name is not None
    info = await store.read(LogReader.stream_info, name)
    if request.start == "at":
        cursor = request.point
    elif request.start == "start":
        cursor = -1
    else:
        cursor = info.last_revision
    caught_up = False
    while True:
        seen_head = store.commits.head
        info = await store.read(LogReader.stream_info, name)
        if info.tombstoned:
            raise stream_deleted(name)
        page = ItemPage([], more=False)
        if not info.soft_deleted:
            # Revisions hidden by the stream metadata ($tb, e.g. before an undelete) are skipped.
            page = await store.read(
                stream_page_items,
                name,
                max(cursor + 1, info.first_visible_revision()),
                forwards=True,
                limit=PAGE_SIZE,
                resolve=request.resolve_links,
            )
        for item in page.items:
            if item.event.revision > info.last_revision:
                break  # committed after the stream_info above; the next round takes it
            cursor = item.event.revision
            yield item.message(request.structured_ids)
        if not page.more:
            if not caught_up:
                caught_up = True
                yield wire.caught_up()
            await store.commits.wait_beyond(seen_head)
