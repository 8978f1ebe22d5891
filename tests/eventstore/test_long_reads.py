"""Reads and subscriptions over more events than any one page a server might fetch at once."""

from __future__ import annotations

import pytest
from esdbclient import NewEvent, StreamState

from tests.eventstore.clients import AsyncClient
from tests.eventstore.support import (
    collect,
    have_ids,
    head_position,
    ids,
    is_increasing,
    new_events,
    positions,
    read_all,
    read_my_streams,
    read_stream,
    stream_name,
)

APPENDS, PER_APPEND = 14, 50
TOTAL = APPENDS * PER_APPEND


@pytest.fixture(scope="module")
async def long_stream(client: AsyncClient) -> tuple[str, list[NewEvent], int]:
    """(stream, its 700 events, the head position before they were written)."""
    stream = stream_name("es-long")
    start = await head_position(client)
    events = new_events(TOTAL)
    for number in range(APPENDS):
        await client.append_to_stream(
            stream,
            current_version=StreamState.NO_STREAM if number == 0 else number * PER_APPEND - 1,
            events=events[number * PER_APPEND : (number + 1) * PER_APPEND],
        )
    return stream, events, start


async def test_long_stream_reads_in_both_directions(
    client: AsyncClient, long_stream: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, _ = long_stream
    assert ids(await read_stream(client, stream)) == ids(events)
    assert ids(await read_stream(client, stream, backwards=True)) == ids(events[::-1])
    middle = await read_stream(client, stream, stream_position=300, backwards=True, limit=500)
    assert ids(middle) == ids(events[300::-1])
    tail = await read_stream(client, stream, stream_position=299, limit=301)
    assert ids(tail) == ids(events[299:600])


async def test_long_all_reads_in_both_directions_with_filter_and_count(
    client: AsyncClient, long_stream: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, start = long_stream
    forwards = await read_my_streams(client, stream, after=start)
    assert ids(forwards) == ids(events)
    assert is_increasing(positions(forwards))

    newest = forwards[-1].commit_position
    assert newest is not None
    backwards = await read_all(
        client,
        commit_position=newest,
        backwards=True,
        filter_include=[stream],
        filter_by_stream_name=True,
        limit=TOTAL - 1,
    )
    assert ids(backwards) == ids(events[-2::-1])
    counted = await read_my_streams(client, stream, after=start, limit=TOTAL - 3)
    assert ids(counted) == ids(events[: TOTAL - 3])


async def test_long_catch_up_subscriptions_deliver_everything_in_order(
    client: AsyncClient, long_stream: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, start = long_stream
    async with await client.subscribe_to_stream(stream) as subscription:
        from_stream = await collect(subscription, have_ids(events[-1:]))
    assert ids(from_stream) == ids(events)

    async with await client.subscribe_to_all(
        commit_position=start, filter_include=[stream], filter_by_stream_name=True
    ) as subscription:
        from_all = await collect(subscription, have_ids(events[-1:]))
    assert ids(from_all) == ids(events)
