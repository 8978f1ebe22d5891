"""Catch-up subscriptions to one stream or to `$all`: confirmation, catch-up, caught_up, live.

Each subscription pages through the log from its own cursor and, once it has read everything
committed, waits on the store's `CommitSignal` and re-queries. Nothing but the page in hand is
held for it, so a slow subscriber only delays itself (gRPC flow control holds its `yield`),
never writers or other subscribers.

Start points are exclusive: from revision R a stream subscription delivers revisions above R,
from position P an `$all` subscription delivers positions above P; "end" means live events only.
An `$all` subscription from a position inside the log where no event starts is confirmed, then
fails, as in EventStoreDB (see `LogReader.is_read_start`).
With a filter, a checkpoint follows every `window x multiplier` events scanned (filtered-out
ones included), at the position of the last event scanned, in catch-up and live alike.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from esdbclient.protos.Grpc import streams_pb2

from embedded.eventstore import wire
from embedded.eventstore.errors import invalid_subscription_position
from embedded.eventstore.event_store import EventStore
from embedded.eventstore.read_batches import (
    Encoder,
    all_subscription_batch,
    stream_subscription_batch,
)
from embedded.eventstore.reads import ReadRequest
from embedded.eventstore.storage import LogReader

Messages = list[streams_pb2.ReadResp | bytes]


async def subscribe(store: EventStore, request: ReadRequest) -> AsyncIterator[Messages]:
    """The messages of a subscription, a page at a time, until the client goes away."""
    yield [wire.confirmation(str(uuid.uuid4()))]
    encoder = Encoder(request.resolve_links, request.structured_ids)
    if request.stream is None:
        batches = _all_messages(store, request, encoder)
    else:
        batches = _stream_messages(store, request, encoder, request.stream)
    async for messages in batches:
        yield messages


async def _all_messages(
    store: EventStore, request: ReadRequest, encoder: Encoder
) -> AsyncIterator[Messages]:
    if request.start == "at":
        cursor = request.point
        if not await store.read(LogReader.is_read_start, cursor):
            raise invalid_subscription_position()
    elif request.start == "start":
        cursor = -1
    else:
        cursor = store.commits.head
    scanned = 0
    caught_up = False
    while True:
        seen_head = store.commits.head
        batch, scanned = await store.read(
            all_subscription_batch, encoder, cursor, scanned, request.filter
        )
        cursor = batch.last
        yield batch.messages
        if not batch.more:
            if not caught_up:
                caught_up = True
                yield [wire.caught_up()]
            await store.commits.wait_beyond(max(seen_head, cursor))


async def _stream_messages(
    store: EventStore, request: ReadRequest, encoder: Encoder, name: str
) -> AsyncIterator[Messages]:
    if request.start == "at":
        cursor = request.point
    elif request.start == "start":
        cursor = -1
    else:
        cursor = (await store.read(LogReader.stream_info, name)).last_revision
    caught_up = False
    while True:
        seen_head = store.commits.head
        batch = await store.read(stream_subscription_batch, encoder, name, cursor)
        cursor = batch.last
        yield batch.messages
        if not batch.more:
            if not caught_up:
                caught_up = True
                yield [wire.caught_up()]
            await store.commits.wait_beyond(seen_head)
