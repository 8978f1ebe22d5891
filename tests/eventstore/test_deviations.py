"""Where embedded-eventstore once answered differently from EventStoreDB (issue 11).

Each test states what a real EventStoreDB answers, so it passes against one (EVENTSTORE_URI).
"""

from __future__ import annotations

import pytest
from esdbclient import AsyncEventStoreDBClient, StreamState
from esdbclient.exceptions import StreamIsDeleted

from tests.eventstore.support import new_events, read_stream, stream_name


@pytest.mark.parametrize("with_metadata", [True, False], ids=["metadata", "no-metadata"])
async def test_metadata_of_a_tombstoned_stream_reads_as_deleted_yet_can_be_set(
    client: AsyncEventStoreDBClient, with_metadata: bool
) -> None:
    # As esdbclient's and kurrentdbclient's test_stream_metadata_get_and_set assert.
    stream = stream_name("es-dev-meta")
    await client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=new_events(2)
    )
    if with_metadata:
        await client.set_stream_metadata(
            stream, metadata={"foo": "bar"}, current_version=StreamState.NO_STREAM
        )
    await client.tombstone_stream(stream, current_version=StreamState.ANY)

    with pytest.raises(StreamIsDeleted):
        await client.get_stream_metadata(stream)
    with pytest.raises(StreamIsDeleted):
        await read_stream(client, f"$${stream}")

    # Writes to the metastream are still checked against its own revisions, and accepted.
    await client.set_stream_metadata(
        stream,
        metadata={"foo": "baz"},
        current_version=0 if with_metadata else StreamState.NO_STREAM,
    )
    await client.set_stream_metadata(
        stream, metadata={"foo": "qux"}, current_version=StreamState.ANY
    )
    with pytest.raises(StreamIsDeleted):
        await client.get_stream_metadata(stream)
