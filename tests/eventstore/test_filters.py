"""Server-side filters on ``$all``: event type and stream name, regex and prefix."""

from __future__ import annotations

import uuid

import pytest
from esdbclient import NewEvent, StreamState
from esdbclient.common import construct_recorded_event
from esdbclient.protos.Grpc import streams_pb2, streams_pb2_grpc
from esdbclient.streams import BaseStreamsService

from tests.eventstore.clients import AsyncClient, RecordedEvent, esdbclient_only
from tests.eventstore.support import (
    head_position,
    new_events,
    read_all,
    read_my_streams,
    stream_name,
)


@pytest.fixture
async def mixed(client: AsyncClient) -> tuple[str, str, int]:
    """Interleaved types A/B/C (named after a fresh tag) in streams ``<prefix>-x-*`` and -y-*.

    Returns (tag, stream prefix, position before the first append).
    """
    tag = uuid.uuid4().hex
    prefix = stream_name("es-filter")
    start = await head_position(client)
    for number, kind in enumerate("ABCABCAB"):
        stream = f"{prefix}-{'x' if number % 2 == 0 else 'y'}-{number}"
        event = NewEvent(type=f"{tag}-{kind}", data=b"{}")
        await client.append_to_stream(stream, current_version=StreamState.ANY, events=[event])
    return tag, prefix, start


def kinds(events: list[RecordedEvent], tag: str) -> list[str]:
    return [event.type.removeprefix(f"{tag}-") for event in events if event.type.startswith(tag)]


async def test_include_event_types_by_regex(
    client: AsyncClient, mixed: tuple[str, str, int]
) -> None:
    tag, _, start = mixed
    found = await read_all(client, commit_position=start, filter_include=[f"{tag}-[AC]"])
    assert [event.type for event in found] == [f"{tag}-{kind}" for kind in "ACACA"]


async def test_exclude_event_types_by_regex(
    client: AsyncClient, mixed: tuple[str, str, int]
) -> None:
    tag, _, start = mixed
    found = await read_all(client, commit_position=start, filter_exclude=[f"{tag}-B"])
    assert kinds(found, tag) == list("ACACA")


async def test_include_and_exclude_stream_names_by_regex(
    client: AsyncClient, mixed: tuple[str, str, int]
) -> None:
    tag, prefix, start = mixed
    included = await read_my_streams(client, f"{prefix}-x-", after=start)
    assert kinds(included, tag) == list("ACBA")
    assert {event.stream_name for event in included} == {f"{prefix}-x-{n}" for n in (0, 2, 4, 6)}

    excluded = await read_all(
        client,
        commit_position=start,
        filter_exclude=[f"{prefix}-y-.*"],
        filter_by_stream_name=True,
    )
    assert kinds(excluded, tag) == list("ACBA")


async def test_filter_applies_before_the_count(
    client: AsyncClient, mixed: tuple[str, str, int]
) -> None:
    tag, _, start = mixed
    found = await read_all(client, commit_position=start, filter_include=[f"{tag}-C"], limit=2)
    assert [event.type for event in found] == [f"{tag}-C"] * 2


def raw_read_all(
    raw_streams: streams_pb2_grpc.StreamsStub,
    start: int,
    *,
    by_stream_name: bool,
    regex: str = "",
    prefixes: tuple[str, ...] = (),
) -> list[RecordedEvent]:
    """A forwards ``$all`` read with a filter expression the client cannot send (prefixes, or a
    regex without its anchors)."""
    request = BaseStreamsService._construct_read_request(
        commit_position=start, limit=1000, filter_include=["placeholder"]
    )
    expression = streams_pb2.ReadReq.Options.FilterOptions.Expression(
        regex=regex, prefix=list(prefixes)
    )
    if by_stream_name:
        request.options.filter.stream_identifier.CopyFrom(expression)
    else:
        request.options.filter.event_type.CopyFrom(expression)
    found: list[RecordedEvent] = []
    for response in raw_streams.Read(request, timeout=10):
        if response.WhichOneof("content") == "event":
            event = construct_recorded_event(response.event)
            assert event is not None
            found.append(event)
    return found


@esdbclient_only
async def test_regex_matches_anywhere_in_the_name(
    raw_streams: streams_pb2_grpc.StreamsStub, mixed: tuple[str, str, int]
) -> None:
    tag, prefix, start = mixed
    by_type = raw_read_all(raw_streams, start, by_stream_name=False, regex=f"{tag[4:]}-(A|B)")
    assert kinds(by_type, tag) == list("ABABAB")

    middle = prefix.removeprefix("es-filter")
    by_stream = raw_read_all(raw_streams, start, by_stream_name=True, regex=f"{middle}-y")
    assert kinds(by_stream, tag) == list("BACB")


@esdbclient_only
async def test_prefix_lists_match_names_that_start_with_any_prefix(
    raw_streams: streams_pb2_grpc.StreamsStub, mixed: tuple[str, str, int]
) -> None:
    tag, prefix, start = mixed
    by_type = raw_read_all(raw_streams, start, by_stream_name=False, prefixes=(f"{tag}-C",))
    assert kinds(by_type, tag) == list("CC")
    not_a_prefix = raw_read_all(raw_streams, start, by_stream_name=False, prefixes=(tag[1:],))
    assert kinds(not_a_prefix, tag) == []

    by_stream = raw_read_all(
        raw_streams, start, by_stream_name=True, prefixes=(f"{prefix}-x-0", f"{prefix}-y-")
    )
    assert kinds(by_stream, tag) == list("ABACB")


async def test_default_filter_hides_system_and_persistent_config_events(
    client: AsyncClient,
) -> None:
    stream = stream_name("es-system")
    start = await head_position(client)
    await client.append_to_stream(
        stream,
        current_version=StreamState.NO_STREAM,
        events=[*new_events(1), NewEvent(type="PersistentConfig7", data=b"{}")],
    )
    await client.set_stream_metadata(stream, metadata={"$maxCount": 100})

    default = await read_all(client, commit_position=start)
    assert not [event for event in default if event.type.startswith("$")]
    assert [event.type for event in default if event.stream_name == stream] == ["Tested"]

    everything = await read_all(client, commit_position=start, filter_exclude=[])
    mine = [(event.stream_name, event.type) for event in everything if stream in event.stream_name]
    assert mine == [(stream, "Tested"), (stream, "PersistentConfig7"), (f"$${stream}", "$metadata")]


async def test_commit_position_is_zero_when_nothing_matches(
    client: AsyncClient,
) -> None:
    never = f"never-{uuid.uuid4().hex}"
    assert await client.get_commit_position(filter_include=[never]) == 0
    assert await client.get_commit_position(filter_include=[never], filter_by_stream_name=True) == 0
