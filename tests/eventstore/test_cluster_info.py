"""What clients ask besides streams: gossip (for ``esdb+discover://``) and persistent
subscription listings (some client code lists them)."""

from __future__ import annotations

from esdbclient import StreamState

from tests.eventstore.clients import AsyncClient, Library, SyncClient
from tests.eventstore.support import ids, new_events, read_stream, stream_name


def test_gossip_names_one_leader_and_discovery_connects(
    eventstore_uri: str, library: Library, sync_client: SyncClient, external_eventstore: bool
) -> None:
    with SyncClient(library, library.uri(eventstore_uri, discover=True)) as discovered:
        members = discovered.read_gossip()
        leaders = [member for member in members if member.state == library.leader_state]
        assert len(leaders) == 1
        if not external_eventstore:
            host, _, port = sync_client.connection_target.rpartition(":")
            assert [(m.address, m.port) for m in members] == [(host, int(port))]

        stream = stream_name("es-discover")
        events = new_events(2)
        discovered.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
        assert ids(discovered.get_stream(stream)) == ids(events)


async def test_async_client_connects_by_discovery(eventstore_uri: str, library: Library) -> None:
    discovered = AsyncClient(library, library.uri(eventstore_uri, discover=True))
    await discovered.connect()
    try:
        stream = stream_name("es-discover")
        events = new_events(1)
        await discovered.append_to_stream(stream, current_version=StreamState.ANY, events=events)
        assert ids(await read_stream(discovered, stream)) == ids(events)
    finally:
        await discovered.close()


async def test_persistent_subscriptions_list_is_answered(
    client: AsyncClient,
    sync_client: SyncClient,
    library: Library,
    external_eventstore: bool,
) -> None:
    # NOT_FOUND is turned into [] by the client; anything else would raise here.
    listed = [await client.list_subscriptions(), sync_client.list_subscriptions()]
    for subscriptions in listed:
        assert all(isinstance(info, library.subscription_info) for info in subscriptions)
        if not external_eventstore:
            assert subscriptions == []
