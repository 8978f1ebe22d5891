"""Durability with a private server: kill -9 under load, clean restart, a fresh database."""

from __future__ import annotations

import itertools
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from esdbclient import StreamState

from tests.eventstore.clients import AsyncClient, Library, RecordedEvent, SyncClient
from tests.eventstore.support import (
    data,
    is_increasing,
    new_events,
    positions,
    read_all,
    read_stream,
    stream_name,
)
from tests.servers import ServerProcess

WRITER = Path(__file__).with_name("durable_writer.py")
ACKS_BEFORE_KILL = 150
WAIT_S = 60.0

StartServer = Callable[[Path | None], ServerProcess]


@asynccontextmanager
async def connected(library: Library, server: ServerProcess) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(library, server.uri)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


def acks_until_killed(writer: subprocess.Popen[str], server: ServerProcess, log: Path) -> list[str]:
    """The writer's ack lines; the server is killed after ACKS_BEFORE_KILL of them (bounded
    waits, no sleeping). Acks printed between that moment and the kill count too."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    acks: list[str] = []
    while len(acks) < ACKS_BEFORE_KILL:
        line = lines.get(timeout=WAIT_S)
        assert line is not None, f"writer ended after {len(acks)} acks: {log.read_text()}"
        acks.append(line)
    server.kill()
    writer.wait(timeout=WAIT_S)
    while (line := lines.get(timeout=WAIT_S)) is not None:
        acks.append(line)
    return acks


def load_then_kill(server: ServerProcess, prefix: str, log: Path) -> list[list[str]]:
    """Runs the writer against ``server`` and kills the server under load; returns the acks."""
    with log.open("w") as errors:
        writer = subprocess.Popen(
            [sys.executable, str(WRITER), server.uri, prefix],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            return [line.split() for line in acks_until_killed(writer, server, log)]
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


def check_survivors(
    library: Library, server: ServerProcess, prefix: str, acks: list[list[str]]
) -> None:
    with SyncClient(library, server.uri) as client:
        for number in range(2):
            stream = f"{prefix}-{number}"
            stored = list(client.get_stream(stream))
            check_stream(stored, [ack for ack in acks if ack[0] == stream])
        mine = list(client.read_all(filter_include=[f"{prefix}-.*"], filter_by_stream_name=True))
        assert len(mine) >= len(acks)
        assert is_increasing(positions(mine))


def test_every_acknowledged_append_survives_kill_9(
    library: Library, own_server: StartServer, tmp_path: Path
) -> None:
    prefix = stream_name("es-durable")
    acks = load_then_kill(own_server(None), prefix, tmp_path / "writer.log")
    check_survivors(library, own_server(None), prefix, acks)


@pytest.mark.soak
def test_repeated_kill_9_under_load_loses_nothing(
    library: Library, own_server: StartServer, tmp_path: Path
) -> None:
    rounds: list[tuple[str, list[list[str]]]] = []
    for number in range(8):
        prefix = stream_name(f"es-durable-{number}")
        rounds.append((prefix, load_then_kill(own_server(None), prefix, tmp_path / "writer.log")))
        restarted = own_server(None)
        for earlier_prefix, acks in rounds:
            check_survivors(library, restarted, earlier_prefix, acks)
        restarted.stop()


def check_stream(stored: list[RecordedEvent], acks: list[list[str]]) -> None:
    """Whole appends only, in order, and every acknowledged one where it was acknowledged."""
    assert [event.stream_position for event in stored] == list(range(len(stored)))
    appends = [list(group) for _, group in itertools.groupby(stored, lambda e: data(e)["append"])]
    assert [data(group[0])["append"] for group in appends] == list(range(len(appends)))
    for group in appends:
        size = data(group[0])["size"]
        assert [data(event)["index"] for event in group] == list(range(size)), "partial append"
    assert len(acks) <= len(appends) <= len(acks) + 1, "at most the in-flight append is extra"
    for _, number, size, revision, position in acks:
        last = stored[int(revision)]
        assert (data(last)["append"], data(last)["index"] + 1) == (int(number), int(size))
        assert last.commit_position == int(position)


def snapshot(events: list[RecordedEvent]) -> list[tuple[object, ...]]:
    return [
        (
            event.id,
            event.stream_name,
            event.stream_position,
            event.commit_position,
            event.type,
            event.data,
            event.metadata,
            event.content_type,
            event.recorded_at,
        )
        for event in events
    ]


async def test_clean_restart_keeps_every_event_position_and_stream_state(
    library: Library, own_server: StartServer
) -> None:
    server = own_server(None)
    prefix = stream_name("es-restart")
    kept, deleted, tombstoned = (f"{prefix}-{name}" for name in ("kept", "deleted", "tomb"))
    async with connected(library, server) as client:
        await client.append_to_stream(
            kept, current_version=StreamState.NO_STREAM, events=new_events(2)
        )
        await client.append_to_stream(kept, current_version=1, events=new_events(3))
        await client.set_stream_metadata(kept, metadata={"$maxAge": 3600})
        await client.append_to_stream(
            deleted, current_version=StreamState.ANY, events=new_events(2)
        )
        await client.delete_stream(deleted, current_version=1)
        await client.append_to_stream(
            tombstoned, current_version=StreamState.ANY, events=new_events(1)
        )
        await client.tombstone_stream(tombstoned, current_version=0)
        before = snapshot(await read_all(client, filter_exclude=[]))
    server.stop()

    restarted = own_server(None)
    async with connected(library, restarted) as client:
        assert snapshot(await read_all(client, filter_exclude=[])) == before
        with pytest.raises(library.errors.NotFound):
            await read_stream(client, deleted)
        with pytest.raises(library.errors.StreamIsDeleted):
            await read_stream(client, tombstoned)
        assert await client.get_stream_metadata(kept) == ({"$maxAge": 3600}, 0)

        position = await client.append_to_stream(kept, current_version=4, events=new_events(1))
        last_before = before[-1][3]
        assert isinstance(last_before, int) and position > last_before
        assert [event.stream_position for event in await read_stream(client, kept)] == [
            0,
            1,
            2,
            3,
            4,
            5,
        ]
        await client.append_to_stream(
            deleted, current_version=StreamState.NO_STREAM, events=new_events(1)
        )
        assert [event.stream_position for event in await read_stream(client, deleted)] == [2]


async def test_fresh_database_starts_with_a_system_event(
    library: Library, own_server: StartServer
) -> None:
    async with connected(library, own_server(None)) as client:
        (first,) = await read_all(client, filter_exclude=[], limit=1)
        assert first.type.startswith("$")
        assert first.commit_position is not None and first.commit_position > 0
        assert await client.get_commit_position(filter_exclude=[]) > 0
        assert await client.get_commit_position() == 0, "only system events so far"
        assert await read_all(client) == []
