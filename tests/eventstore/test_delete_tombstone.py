"""Soft delete (reads say not found, revisions keep counting) and tombstones (gone for good)."""

from __future__ import annotations

import pytest
from esdbclient import StreamState

from tests.eventstore.clients import AsyncClient, Errors, SyncClient
from tests.eventstore.support import (
    Appender,
    head_position,
    ids,
    new_events,
    read_all,
    read_stream,
    stream_name,
)

DELETED = 2**63 - 1  # the `$tb` of a soft-deleted stream and the revision of a tombstone


async def three_events(client: AsyncClient) -> str:
    stream = stream_name("es-del")
    await client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(3)
    )
    return stream


@pytest.mark.parametrize("version", [2, StreamState.ANY, StreamState.EXISTS])
async def test_soft_delete_makes_reads_not_found(
    client: AsyncClient, sync_client: SyncClient, version: int | StreamState, errors: Errors
) -> None:
    stream = await three_events(client)
    await client.delete_stream(stream, current_version=version)

    with pytest.raises(errors.NotFound):
        await read_stream(client, stream)
    with pytest.raises(errors.NotFound):
        sync_client.get_stream(stream)
    metadata, _ = await client.get_stream_metadata(stream)
    assert metadata == {"$tb": DELETED}


@pytest.mark.parametrize("version", [StreamState.NO_STREAM, 2])
async def test_append_after_soft_delete_undeletes_and_revisions_keep_counting(
    append: Appender, client: AsyncClient, version: int | StreamState
) -> None:
    stream = await three_events(client)
    await client.delete_stream(stream, current_version=2)
    later = new_events(2)
    await append(stream, version, later)

    stored = await read_stream(client, stream)
    assert ids(stored) == ids(later), "only revisions from `$tb` on are readable"
    assert [event.stream_position for event in stored] == [3, 4]
    metadata, _ = await client.get_stream_metadata(stream)
    assert metadata == {"$tb": 3}
    assert await client.get_current_version(stream) == 4


async def test_stream_exists_on_soft_deleted_stream_is_deleted(
    append: Appender, client: AsyncClient, errors: Errors
) -> None:
    stream = await three_events(client)
    await client.delete_stream(stream, current_version=2)
    # Over Append "deleted" is a FAILED_PRECONDITION, which the client does not translate.
    with pytest.raises((errors.StreamIsDeleted, errors.FailedPrecondition), match="is deleted"):
        await append(stream, StreamState.EXISTS, new_events(1))


async def test_delete_of_missing_stream_is_not_found(
    client: AsyncClient, sync_client: SyncClient, errors: Errors
) -> None:
    with pytest.raises(errors.NotFound):
        await client.delete_stream(stream_name("es-missing"), current_version=StreamState.ANY)
    with pytest.raises(errors.NotFound):
        sync_client.delete_stream(stream_name("es-missing"), current_version=0)


@pytest.mark.parametrize("version", [0, 5, StreamState.NO_STREAM])
async def test_delete_with_wrong_revision_conflicts_and_keeps_the_stream(
    client: AsyncClient, version: int | StreamState, errors: Errors
) -> None:
    stream = await three_events(client)
    with pytest.raises(errors.WrongCurrentVersion):
        await client.delete_stream(stream, current_version=version)
    assert len(await read_stream(client, stream)) == 3


async def test_tombstone_with_any_on_a_stream_that_never_existed(
    client: AsyncClient,
    errors: Errors,
) -> None:
    stream = stream_name("es-tomb")
    await client.tombstone_stream(stream, current_version=StreamState.ANY)
    with pytest.raises(errors.StreamIsDeleted):
        await read_stream(client, stream)


async def test_tombstone_writes_stream_deleted_event_at_last_revision(
    client: AsyncClient,
) -> None:
    stream = await three_events(client)
    start = await head_position(client)
    await client.tombstone_stream(stream, current_version=2)

    found = await read_all(
        client,
        commit_position=start,
        filter_exclude=[],
        filter_include=[stream],
        filter_by_stream_name=True,
    )
    found = [event for event in found if (event.commit_position or 0) > start]
    assert [(event.type, event.stream_position) for event in found] == [("$streamDeleted", DELETED)]


@pytest.mark.parametrize(
    "version", [StreamState.ANY, StreamState.NO_STREAM, 0, 2, StreamState.EXISTS]
)
async def test_after_tombstone_everything_is_deleted(
    client: AsyncClient,
    sync_client: SyncClient,
    version: int | StreamState,
    errors: Errors,
) -> None:
    stream = await three_events(client)
    await client.tombstone_stream(stream, current_version=2)
    (event,) = new_events(1)

    with pytest.raises(errors.StreamIsDeleted):
        await client.append_to_stream(stream, current_version=version, events=[event])
    with pytest.raises(errors.StreamIsDeleted):
        sync_client.append_to_stream(stream, current_version=version, events=[event])
    # One event goes over Append, whose FAILED_PRECONDITION the client does not translate.
    with pytest.raises((errors.StreamIsDeleted, errors.FailedPrecondition), match="is deleted"):
        sync_client.append_to_stream(stream, current_version=version, events=event)
    with pytest.raises(errors.StreamIsDeleted):
        await read_stream(client, stream)
    with pytest.raises(errors.StreamIsDeleted):
        await read_stream(client, stream, backwards=True)
    with pytest.raises(errors.StreamIsDeleted):
        sync_client.get_stream(stream)
    with pytest.raises(errors.StreamIsDeleted):
        await client.delete_stream(stream, current_version=version)
    with pytest.raises(errors.StreamIsDeleted):
        await client.tombstone_stream(stream, current_version=version)
