"""Many writers and subscribers at once: no lost or duplicated event, ``$all`` in commit order."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from esdbclient import NewEvent, StreamState

from tests.eventstore.clients import AsyncClient, AsyncSubscription, Errors, RecordedEvent
from tests.eventstore.support import (
    collect,
    data,
    have_ids,
    head_position,
    ids,
    is_increasing,
    positions,
    read_my_streams,
    read_stream,
    stream_name,
)

WRITERS = 20
EVENTS_PER_WRITER = 3
APPENDS_PER_WRITER = 5
EVENTS_PER_APPEND = 3
SUBSCRIBERS = 3
WAIT_S = 60.0


async def test_writers_racing_on_one_stream_lose_and_duplicate_nothing(
    client: AsyncClient, errors: Errors
) -> None:
    stream = stream_name("es-race")
    conflicts = Counter[int]()

    async def writer(number: int) -> None:
        for sequence in range(EVENTS_PER_WRITER):
            while True:
                version = await client.get_current_version(stream)
                # A fresh id per attempt: a conflicting attempt that left anything behind would
                # show up as a duplicate below.
                event = NewEvent(
                    type="Raced", data=json.dumps({"writer": number, "seq": sequence}).encode()
                )
                try:
                    await client.append_to_stream(stream, current_version=version, events=[event])
                    break
                except errors.WrongCurrentVersion:
                    conflicts[number] += 1

    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(*(writer(number) for number in range(WRITERS)))

    stored = await read_stream(client, stream)
    written = [(data(event)["writer"], data(event)["seq"]) for event in stored]
    assert sorted(written) == [(w, s) for w in range(WRITERS) for s in range(EVENTS_PER_WRITER)]
    assert [event.stream_position for event in stored] == list(range(len(stored)))
    for number in range(WRITERS):
        mine = [seq for writer, seq in written if writer == number]
        assert mine == sorted(mine)
    assert sum(conflicts.values()) > 0, "the writers never actually raced"


async def test_writers_on_distinct_streams_commit_in_all_order_seen_by_every_subscriber(
    client: AsyncClient,
) -> None:
    prefix = stream_name("es-many")
    start = await head_position(client)
    appended: list[tuple[int, list[str]]] = []
    expected: list[NewEvent] = []

    async def writer(number: int) -> None:
        stream = f"{prefix}-{number}"
        for append_number in range(APPENDS_PER_WRITER):
            events = [
                NewEvent(type="Many", data=json.dumps({"w": number, "a": append_number}).encode())
                for _ in range(EVENTS_PER_APPEND)
            ]
            expected.extend(events)
            version = StreamState.NO_STREAM if append_number == 0 else append_number * 3 - 1
            position = await client.append_to_stream(stream, current_version=version, events=events)
            appended.append((position, ids(events)))

    async def subscribe() -> AsyncSubscription:
        return await client.subscribe_to_all(
            commit_position=start, filter_include=[f"{prefix}-.*"], filter_by_stream_name=True
        )

    subscriptions = [await subscribe() for _ in range(SUBSCRIBERS)]
    slow = await subscribe()  # not read until the writers are done: must not hold them up
    total = WRITERS * APPENDS_PER_WRITER * EVENTS_PER_APPEND
    readers = [
        asyncio.create_task(collect(sub, lambda got: len(got) >= total, WAIT_S))
        for sub in subscriptions
    ]
    try:
        async with asyncio.timeout(WAIT_S):
            await asyncio.gather(*(writer(number) for number in range(WRITERS)))
        seen = await asyncio.gather(*readers)
        seen.append(await collect(slow, have_ids(expected), WAIT_S))
    finally:
        for sub in [*subscriptions, slow]:
            await sub.stop()

    in_all = await read_my_streams(client, prefix, after=start)
    assert len(in_all) == total
    assert is_increasing(positions(in_all)), "one position per event, increasing in $all order"
    assert_appends_are_contiguous_in_commit_order(in_all, appended)
    for received in seen:
        assert ids(received) == ids(in_all), "every subscriber sees each event once, in $all order"


def assert_appends_are_contiguous_in_commit_order(
    in_all: list[RecordedEvent], appended: list[tuple[int, list[str]]]
) -> None:
    by_position = sorted(appended)
    assert [event_id for _, batch in by_position for event_id in batch] == ids(in_all)
    last_of_each = in_all[EVENTS_PER_APPEND - 1 :: EVENTS_PER_APPEND]
    assert positions(last_of_each) == [position for position, _ in by_position]


async def test_a_subscriber_that_reads_nothing_holds_up_no_writer_or_subscriber(
    client: AsyncClient,
) -> None:
    # More data than gRPC flow-control windows hold, so an idle subscriber's stream really fills.
    stream = stream_name("es-idle")
    appends, per_append, size = 60, 50, 4096
    events = [
        NewEvent(type="Bulk", data=b"z" * size, content_type="application/octet-stream")
        for _ in range(appends * per_append)
    ]
    idle, busy = [
        await client.subscribe_to_all(
            from_end=True, filter_include=[stream], filter_by_stream_name=True
        )
        for _ in range(2)
    ]
    try:
        reader = asyncio.create_task(collect(busy, have_ids(events[-1:]), WAIT_S))
        async with asyncio.timeout(WAIT_S):
            for number in range(appends):
                batch = events[number * per_append : (number + 1) * per_append]
                version = StreamState.NO_STREAM if number == 0 else number * per_append - 1
                await client.append_to_stream(stream, current_version=version, events=batch)
        assert ids(await reader) == ids(events)
        assert ids(await collect(idle, have_ids(events[-1:]), WAIT_S)) == ids(events)
    finally:
        await idle.stop()
        await busy.stop()
