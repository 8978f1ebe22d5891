"""Expected-revision rules 2-6 and idempotent re-appends, over both append RPCs.

A re-sent append (the client retries once on a transport error) must be answered with the
original position and write nothing; anything that only partly matches is a conflict.
"""

from __future__ import annotations

import pytest
from esdbclient import NewEvent, StreamState

from tests.eventstore.clients import AsyncClient, Errors
from tests.eventstore.support import Appender, ids, new_events, read_stream, stream_name


async def stored_ids(client: AsyncClient, stream: str) -> list[str]:
    return ids(await read_stream(client, stream))


@pytest.fixture
async def three(append: Appender) -> tuple[str, list[NewEvent], int]:
    """A stream holding revisions 0-2, its events and the position of the append."""
    stream = stream_name("es-rev")
    events = new_events(3)
    return stream, events, await append(stream, StreamState.NO_STREAM, events)


# Rule 2: a new stream.


@pytest.mark.parametrize("version", [StreamState.ANY, StreamState.NO_STREAM])
async def test_new_stream_accepts_any_and_no_stream(
    append: Appender, client: AsyncClient, version: StreamState
) -> None:
    stream = stream_name()
    events = new_events(2)
    await append(stream, version, events)
    assert await stored_ids(client, stream) == ids(events)


@pytest.mark.parametrize("version", [0, 3, StreamState.EXISTS])
async def test_new_stream_refuses_exact_revision_and_stream_exists(
    append: Appender, client: AsyncClient, version: int | StreamState, errors: Errors
) -> None:
    stream = stream_name()
    with pytest.raises(errors.WrongCurrentVersion, match="does not exist"):
        await append(stream, version, new_events(1))
    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)


# Rule 4: exact == current appends; exact > current conflicts.


async def test_exact_current_revision_appends(
    append: Appender, client: AsyncClient, three: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, _ = three
    more = new_events(2)
    await append(stream, 2, more)
    stored = await read_stream(client, stream)
    assert ids(stored) == ids(events + more)
    assert [event.stream_position for event in stored] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("version", [3, 10])
async def test_exact_revision_beyond_current_conflicts_naming_current(
    append: Appender,
    client: AsyncClient,
    three: tuple[str, list[NewEvent], int],
    version: int,
    errors: Errors,
) -> None:
    stream, events, _ = three
    with pytest.raises(errors.WrongCurrentVersion, match="last event is 2 not"):
        await append(stream, version, new_events(1))
    assert await stored_ids(client, stream) == ids(events)


async def test_stream_exists_appends_to_existing_stream(
    append: Appender, client: AsyncClient, three: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, _ = three
    more = new_events(1)
    await append(stream, StreamState.EXISTS, more)
    assert await stored_ids(client, stream) == ids(events + more)


# Rule 5: exact < current (no_stream included) is an idempotency check.


async def test_same_append_resent_returns_original_position_and_writes_nothing(
    append: Appender, client: AsyncClient, three: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, position = three
    assert await append(stream, StreamState.NO_STREAM, events) == position

    more = new_events(2)
    later = await append(stream, 2, more)
    assert later > position
    assert await append(stream, 2, more) == later
    assert await append(stream, StreamState.NO_STREAM, events) == position, "not the head's"
    assert await append(stream, 0, events[1:]) == position
    assert await stored_ids(client, stream) == ids(events + more)


async def test_resent_tail_of_earlier_append_succeeds_and_writes_nothing(
    append: Appender, client: AsyncClient, three: tuple[str, list[NewEvent], int]
) -> None:
    stream, events, position = three
    assert await append(stream, 0, events[1:]) == position
    await append(stream, 0, events[1:2])
    assert await stored_ids(client, stream) == ids(events)


@pytest.mark.parametrize(
    ("version", "batch"),
    [
        (StreamState.NO_STREAM, "other first"),
        (0, "other first"),
        (StreamState.NO_STREAM, "other later"),
        (0, "other later"),
        (0, "past the end"),
        (1, "past the end"),
    ],
)
async def test_resent_append_that_does_not_match_conflicts(
    append: Appender,
    client: AsyncClient,
    three: tuple[str, list[NewEvent], int],
    version: int | StreamState,
    batch: str,
    errors: Errors,
) -> None:
    stream, events, _ = three
    start = version + 1 if isinstance(version, int) else 0  # NO_STREAM: from the first
    matching = events[start:]
    (other,) = new_events(1)
    proposed = {
        "other first": [other, *matching[1:]],
        "other later": [matching[0], other],
        "past the end": [*matching, other],
    }[batch]
    with pytest.raises(errors.WrongCurrentVersion):
        await append(stream, version, proposed)
    assert await stored_ids(client, stream) == ids(events)


# Rule 6: any / stream_exists look the first id up in the stream.


@pytest.mark.parametrize("version", [StreamState.ANY, StreamState.EXISTS])
async def test_any_and_stream_exists_resend_returns_original_position(
    append: Appender,
    client: AsyncClient,
    three: tuple[str, list[NewEvent], int],
    version: StreamState,
) -> None:
    stream, events, position = three
    assert await append(stream, version, events) == position
    await append(stream, version, events[1:])
    more = new_events(1)
    later = await append(stream, version, more)
    assert await append(stream, version, events) == position, "not the head's"
    assert await append(stream, version, more) == later
    assert await stored_ids(client, stream) == ids(events + more)


@pytest.mark.parametrize("version", [StreamState.ANY, StreamState.EXISTS])
@pytest.mark.parametrize("batch", ["other later", "past the end"])
async def test_any_and_stream_exists_partial_match_conflicts(
    append: Appender,
    client: AsyncClient,
    three: tuple[str, list[NewEvent], int],
    version: StreamState,
    batch: str,
    errors: Errors,
) -> None:
    stream, events, _ = three
    (other,) = new_events(1)
    proposed = [events[0], other] if batch == "other later" else [events[2], other]
    with pytest.raises(errors.WrongCurrentVersion):
        await append(stream, version, proposed)
    assert await stored_ids(client, stream) == ids(events)


@pytest.mark.parametrize("version", [StreamState.ANY, StreamState.EXISTS])
async def test_any_and_stream_exists_append_when_first_id_is_new(
    append: Appender,
    client: AsyncClient,
    three: tuple[str, list[NewEvent], int],
    version: StreamState,
) -> None:
    stream, events, position = three
    more = new_events(2)
    assert await append(stream, version, more) > position
    assert await stored_ids(client, stream) == ids(events + more)


async def test_stream_exists_accepts_a_new_stream_that_has_metadata(
    append: Appender, client: AsyncClient
) -> None:
    stream = stream_name()
    await client.set_stream_metadata(stream, metadata={"$maxCount": 10})
    events = new_events(1)
    await append(stream, StreamState.EXISTS, events)
    stored = await read_stream(client, stream)
    assert ids(stored) == ids(events)
    assert stored[0].stream_position == 0
