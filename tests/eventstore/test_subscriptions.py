"""Catch-up subscriptions to a stream and to ``$all``: start points, catch-up then live, filters."""

from __future__ import annotations

from collections.abc import Iterator

from esdbclient import NewEvent, StreamState

from tests.eventstore.clients import AsyncClient, RecordedEvent, SyncClient
from tests.eventstore.support import (
    caught_up,
    collect,
    have_ids,
    head_position,
    ids,
    is_increasing,
    new_events,
    positions,
    real_events,
    stream_name,
)


async def test_stream_subscription_from_start_catches_up_then_goes_live(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub")
    old, new = new_events(3), new_events(2)
    await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=old)
    async with await client.subscribe_to_stream(stream, include_caught_up=True) as subscription:
        assert subscription.subscription_id
        before = await collect(subscription, caught_up)
        await client.append_to_stream(stream, current_version=2, events=new)
        after = await collect(subscription, have_ids(new))

    assert ids(before[:-1]) == ids(old) and before[-1].is_caught_up
    assert ids(after) == ids(new)
    assert [event.stream_position for event in before[:-1] + after] == [0, 1, 2, 3, 4]


async def test_stream_subscription_from_revision_is_exclusive(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub")
    events = new_events(4)
    await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
    async with await client.subscribe_to_stream(stream, stream_position=1) as subscription:
        received = await collect(subscription, have_ids(events[2:]))
    assert ids(received) == ids(events[2:])


async def test_stream_subscription_to_missing_stream_waits_for_it(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub-later")
    events = new_events(2)
    async with await client.subscribe_to_stream(stream) as subscription:
        await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
        received = await collect(subscription, have_ids(events))
    assert ids(received) == ids(events)


async def test_all_subscription_from_position_is_exclusive(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub-all")
    events = new_events(3)
    await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
    stored = list(await client.get_stream(stream))
    async with await client.subscribe_to_all(
        commit_position=stored[1].commit_position,
        filter_include=[stream],
        filter_by_stream_name=True,
    ) as subscription:
        received = await collect(subscription, have_ids(events[2:]))
    assert ids(received) == ids(events[2:])


async def test_all_subscription_from_end_receives_only_new_events(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub-end")
    old, new = new_events(2), new_events(2)
    await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=old)
    async with await client.subscribe_to_all(
        from_end=True, filter_include=[stream], filter_by_stream_name=True
    ) as subscription:
        await client.append_to_stream(stream, current_version=1, events=new)
        received = await collect(subscription, have_ids(new))
    assert ids(received) == ids(new)


async def test_all_subscription_catch_up_then_live_in_log_order(
    client: AsyncClient,
) -> None:
    prefix = stream_name("es-sub-order")
    start = await head_position(client)
    old = new_events(3)
    await client.append_to_stream(f"{prefix}-a", current_version=StreamState.ANY, events=old[:2])
    await client.append_to_stream(f"{prefix}-b", current_version=StreamState.ANY, events=old[2:])
    async with await client.subscribe_to_all(
        commit_position=start,
        filter_include=[f"{prefix}-.*"],
        filter_by_stream_name=True,
        include_caught_up=True,
    ) as subscription:
        before = await collect(subscription, caught_up)
        new = new_events(3)
        await client.append_to_stream(f"{prefix}-b", current_version=StreamState.ANY, events=new)
        after = await collect(subscription, have_ids(new))

    assert ids(before[:-1]) == ids(old) and before[-1].is_caught_up
    assert ids(after) == ids(new)
    assert is_increasing(positions(before[:-1] + after))


async def test_all_subscription_filters_event_types_in_catch_up_and_live(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub-filter")
    start = await head_position(client)

    def mixed(tag: str) -> list[NewEvent]:
        return [NewEvent(type=f"{kind}-{stream}", data=f'"{tag}"'.encode()) for kind in "ABAB"]

    old = mixed("old")
    await client.append_to_stream(stream, current_version=StreamState.ANY, events=old)
    async with await client.subscribe_to_all(
        commit_position=start, filter_include=[f"A-{stream}"]
    ) as subscription:
        new = mixed("new")
        await client.append_to_stream(stream, current_version=StreamState.ANY, events=new)
        received = await collect(subscription, have_ids([new[2]]))
    assert ids(received) == ids([old[0], old[2], new[0], new[2]])


async def test_all_subscription_default_filter_hides_system_events(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-sub-system")
    start = await head_position(client)
    async with await client.subscribe_to_all(commit_position=start) as subscription:
        await client.append_to_stream(
            stream, current_version=StreamState.NO_STREAM, events=new_events(1)
        )
        await client.set_stream_metadata(stream, metadata={"$maxCount": 10})
        await client.delete_stream(stream, current_version=0)
        (marker,) = new_events(1, event_type="Marker")
        await client.append_to_stream(stream, current_version=StreamState.ANY, events=[marker])
        received = await collect(subscription, have_ids([marker]))
    assert [event.type for event in received if stream in event.stream_name] == [
        "Tested",
        "Marker",
    ]
    assert not [event for event in received if event.type.startswith("$")]


def take(subscription: Iterator[RecordedEvent], count: int) -> list[RecordedEvent]:
    return [next(subscription) for _ in range(count)]


def test_sync_subscription_receives_catch_up_and_live_events(
    sync_client: SyncClient,
) -> None:
    stream = stream_name("es-sub-sync")
    old, new = new_events(2), new_events(2)
    sync_client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=old)
    # The deadline turns a missing event into an error instead of a hang.
    with sync_client.subscribe_to_stream(stream, timeout=15) as subscription:
        assert subscription.subscription_id
        received = take(subscription, 2)
        sync_client.append_to_stream(stream, current_version=1, events=new)
        received += take(subscription, 2)
    assert ids(received) == ids(old + new)
    assert real_events(received) == received
