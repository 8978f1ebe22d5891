"""Reads of one stream and of ``$all``: directions, inclusive/exclusive starts, limits."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from esdbclient import NewEvent, StreamState

from tests.eventstore.clients import AsyncClient, Errors, RecordedEvent, SyncClient
from tests.eventstore.support import (
    data,
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


@pytest.fixture
async def five(client: AsyncClient) -> tuple[str, list[NewEvent]]:
    """A stream holding revisions 0-4, written in two appends."""
    stream = stream_name("es-read")
    events = new_events(5)
    await client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events[:2])
    await client.append_to_stream(stream, current_version=1, events=events[2:])
    return stream, events


def revisions(events: Sequence[RecordedEvent]) -> list[int]:
    return [event.stream_position for event in events]


async def test_stream_forwards_from_start(
    client: AsyncClient, five: tuple[str, list[NewEvent]]
) -> None:
    stream, events = five
    stored = await read_stream(client, stream)
    assert ids(stored) == ids(events)
    assert revisions(stored) == [0, 1, 2, 3, 4]
    assert [data(event)["index"] for event in stored] == [0, 1, 2, 3, 4]


async def test_stream_backwards_from_end(
    client: AsyncClient, five: tuple[str, list[NewEvent]]
) -> None:
    stream, events = five
    stored = await read_stream(client, stream, backwards=True)
    assert ids(stored) == ids(events[::-1])
    assert revisions(stored) == [4, 3, 2, 1, 0]


@pytest.mark.parametrize(
    ("start", "backwards", "limit", "expected"),
    [
        (2, False, None, [2, 3, 4]),
        (2, True, None, [2, 1, 0]),
        (4, False, None, [4]),
        (0, True, None, [0]),
        (1, False, 2, [1, 2]),
        (3, True, 2, [3, 2]),
        (None, False, 3, [0, 1, 2]),
        (None, True, 2, [4, 3]),
        (5, False, None, []),
    ],
)
async def test_stream_start_revision_is_inclusive_and_limit_counts(
    client: AsyncClient,
    five: tuple[str, list[NewEvent]],
    start: int | None,
    backwards: bool,
    limit: int | None,
    expected: list[int],
) -> None:
    stream, _ = five
    kwargs: dict[str, object] = {"stream_position": start, "backwards": backwards}
    if limit is not None:
        kwargs["limit"] = limit
    assert revisions(await read_stream(client, stream, **kwargs)) == expected


async def test_sync_client_reads_the_same_stream(
    sync_client: SyncClient, five: tuple[str, list[NewEvent]]
) -> None:
    stream, events = five
    assert ids(sync_client.get_stream(stream)) == ids(events)
    assert revisions(sync_client.get_stream(stream, stream_position=3, backwards=True)) == [
        3,
        2,
        1,
        0,
    ]


async def test_missing_stream_is_not_found(
    client: AsyncClient, sync_client: SyncClient, errors: Errors
) -> None:
    stream = stream_name("es-missing")
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream, backwards=True)
    with pytest.raises(errors.NotFound):
        sync_client.get_stream(stream)
    assert await client.get_current_version(stream) is StreamState.NO_STREAM


async def test_all_forwards_from_position_is_inclusive(
    client: AsyncClient,
) -> None:
    prefix = stream_name("es-all")
    start = await head_position(client)
    for part in ("a", "b", "a"):
        await client.append_to_stream(
            f"{prefix}-{part}", current_version=StreamState.ANY, events=new_events(2)
        )
    mine = await read_my_streams(client, prefix, after=start)
    assert len(mine) == 6 and is_increasing(positions(mine))

    third = mine[2].commit_position
    assert third is not None
    from_third = await read_my_streams(client, prefix, after=third)
    assert ids(from_third) == ids(mine[2:])


async def test_all_backwards_from_position_is_exclusive(
    client: AsyncClient,
) -> None:
    prefix = stream_name("es-all")
    start = await head_position(client)
    await client.append_to_stream(
        f"{prefix}-a", current_version=StreamState.ANY, events=new_events(4)
    )
    mine = await read_my_streams(client, prefix, after=start)
    third = mine[2].commit_position
    assert third is not None

    before_third = await read_my_streams(client, prefix, after=third, backwards=True, limit=2)
    assert ids(before_third) == ids(mine[:2][::-1])


async def test_all_backwards_from_end_starts_at_newest(client: AsyncClient) -> None:
    stream = stream_name("es-all-end")
    position = await client.append_to_stream(
        stream, current_version=StreamState.ANY, events=new_events(2)
    )
    newest = await client.get_commit_position(filter_include=[stream], filter_by_stream_name=True)
    assert newest == position
    assert await client.get_commit_position() >= position
    assert await head_position(client) >= position


async def test_all_limit_counts_events(client: AsyncClient) -> None:
    prefix = stream_name("es-all-limit")
    start = await head_position(client)
    await client.append_to_stream(
        f"{prefix}-a", current_version=StreamState.ANY, events=new_events(5)
    )
    assert len(await read_my_streams(client, prefix, after=start, limit=3)) == 3
    assert len(await read_my_streams(client, prefix, after=start, limit=10)) == 5


async def test_all_holds_system_events_that_only_an_empty_exclude_shows(
    client: AsyncClient,
) -> None:
    (first_system,) = await read_all(client, filter_include=[r"\$.+"], limit=1)
    assert first_system.type.startswith("$")
    assert first_system.commit_position is not None
    visible = await read_all(client, commit_position=first_system.commit_position, limit=1)
    assert visible == [] or visible[0].id != first_system.id
    (unfiltered,) = await read_all(
        client, commit_position=first_system.commit_position, filter_exclude=[], limit=1
    )
    assert unfiltered.id == first_system.id
