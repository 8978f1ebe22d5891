"""Checkpoints of filtered ``$all`` subscriptions: one per window x multiplier events scanned.

Filtered-out events count as scanned; a checkpoint carries the position of the last event
scanned, so it never points past the newest event, and catch-up ends without an extra one.
Expected positions are computed from an unfiltered ``$all`` read, so other writers on a real
server do not break the arithmetic.
"""

from __future__ import annotations

import uuid

from esdbclient import NewEvent, StreamState

from tests.eventstore.clients import AsyncClient, RecordedEvent
from tests.eventstore.support import (
    caught_up,
    collect,
    have_ids,
    head_position,
    positions,
    read_all,
    stream_name,
)

WINDOW, MULTIPLIER = 2, 2
INTERVAL = WINDOW * MULTIPLIER


def checkpoints(items: list[RecordedEvent]) -> list[int]:
    return positions([item for item in items if item.is_checkpoint])


def every_interval(scanned: list[RecordedEvent]) -> list[int]:
    """Positions of the INTERVAL-th, 2*INTERVAL-th, ... scanned event."""
    return positions(scanned[INTERVAL - 1 :: INTERVAL])


async def scanned_after(client: AsyncClient, start: int, last: int) -> list[RecordedEvent]:
    """Every event in ``$all`` in (start, last]."""
    everything = await read_all(client, commit_position=start, filter_exclude=[])
    return [event for event in everything if start < (event.commit_position or 0) <= last]


async def test_catch_up_checkpoints_every_interval_and_none_extra_at_the_end(
    client: AsyncClient,
) -> None:
    tag, stream = uuid.uuid4().hex, stream_name("es-checkpoint")
    start = await head_position(client)
    others = [NewEvent(type=f"other-{tag}", data=b"{}") for _ in range(20)]
    match = NewEvent(type=f"match-{tag}", data=b"{}")
    await client.append_to_stream(stream, current_version=StreamState.ANY, events=others[:7])
    await client.append_to_stream(stream, current_version=StreamState.ANY, events=others[7:])
    await client.append_to_stream(stream, current_version=StreamState.ANY, events=[match])

    async with await client.subscribe_to_all(
        commit_position=start,
        filter_include=[f"match-{tag}"],
        include_checkpoints=True,
        include_caught_up=True,
        window_size=WINDOW,
        checkpoint_interval_multiplier=MULTIPLIER,
    ) as subscription:
        items = await collect(subscription, caught_up)

    (received,) = [item for item in items if str(item.id) == str(match.id)]
    matched_at = items.index(received)
    assert received.commit_position is not None
    scanned = await scanned_after(client, start, received.commit_position)
    assert len(scanned) >= 21
    assert checkpoints(items[:matched_at]) == every_interval(scanned)
    assert checkpoints(items[matched_at:]) == [], "no checkpoint for the end of catch-up"
    head = await head_position(client)
    assert all(position <= head for position in checkpoints(items))


async def test_live_checkpoints_every_interval_at_scanned_events(
    client: AsyncClient,
) -> None:
    tag, stream = uuid.uuid4().hex, stream_name("es-checkpoint-live")
    async with await client.subscribe_to_all(
        from_end=True,
        filter_include=[f"match-{tag}"],
        include_checkpoints=True,
        include_caught_up=True,
        window_size=WINDOW,
        checkpoint_interval_multiplier=MULTIPLIER,
    ) as subscription:
        await collect(subscription, caught_up)
        start = await head_position(client)
        others = [NewEvent(type=f"other-{tag}", data=b"{}") for _ in range(2 * INTERVAL + 1)]
        match = NewEvent(type=f"match-{tag}", data=b"{}")
        await client.append_to_stream(stream, current_version=StreamState.ANY, events=others)
        await client.append_to_stream(stream, current_version=StreamState.ANY, events=[match])
        items = await collect(subscription, have_ids([match]))

    assert items[-1].commit_position is not None
    scanned = await scanned_after(client, start, items[-1].commit_position)
    assert checkpoints(items) == every_interval(scanned)
    assert len(checkpoints(items)) >= 2


async def test_no_checkpoints_unless_asked_for(client: AsyncClient) -> None:
    tag, stream = uuid.uuid4().hex, stream_name("es-checkpoint-off")
    start = await head_position(client)
    others = [NewEvent(type=f"other-{tag}", data=b"{}") for _ in range(2 * INTERVAL)]
    match = NewEvent(type=f"match-{tag}", data=b"{}")
    await client.append_to_stream(stream, current_version=StreamState.ANY, events=[*others, match])
    async with await client.subscribe_to_all(
        commit_position=start,
        filter_include=[f"match-{tag}"],
        window_size=WINDOW,
        checkpoint_interval_multiplier=MULTIPLIER,
    ) as subscription:
        items = await collect(subscription, have_ids([match]))
    assert [str(item.id) for item in items] == [str(match.id)]
