"""Group commit: concurrent appends share a transaction, yet each keeps its own outcome.

The first tests drive the embedded server's `EventStore` in process, where the grouping is
certain: appends started together while a commit is in flight form the next group. The last one
goes through the clients, so it also holds for a real server (where grouping is up to timing).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from esdbclient import NewEvent, StreamState

from embedded.eventstore.event_store import EventStore
from embedded.eventstore.expected_revision import Expected, ExpectedState
from embedded.eventstore.records import POSITION, REVISION, ProposedEvent, WriteResult
from embedded.eventstore.storage import LogReader
from embedded.eventstore.writer import LogWriter
from tests.eventstore.clients import AsyncClient, Errors
from tests.eventstore.support import ids, new_events, read_stream, stream_name

MIB = 1024 * 1024

ANY = ExpectedState.ANY
NO_STREAM = ExpectedState.NO_STREAM


def proposed(count: int = 1, label: str = "grouped") -> list[ProposedEvent]:
    return [
        ProposedEvent(
            str(uuid.uuid4()), "Grouped", True, b"{}", json.dumps({"label": label}).encode()
        )
        for _ in range(count)
    ]


def unstorable() -> list[ProposedEvent]:
    """Two events whose second SQLite cannot bind: the append fails after its first insert."""
    (good,) = proposed()
    bad = ProposedEvent(str(uuid.uuid4()), "Grouped", True, b"{}", [1, 2])  # type: ignore[arg-type]
    return [good, bad]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    opened = await EventStore.open(tmp_path / "events.sqlite")
    try:
        yield opened
    finally:
        await opened.close()


def succeeded(outcome: WriteResult | BaseException) -> WriteResult:
    assert isinstance(outcome, WriteResult) and outcome.kind == "ok", outcome
    return outcome


async def stored(store: EventStore, stream: str) -> list[tuple[int, int, str]]:
    """(revision, position, event id) of every event of `stream`."""
    page = await store.read(LogReader.stream_page, stream, 0, True, 1000)
    return [(row[REVISION], row[POSITION], row[3]) for row in page.rows]


async def in_one_group(
    store: EventStore, appends: list[tuple[str, Expected, list[ProposedEvent]]]
) -> list[WriteResult | BaseException]:
    """Start `appends` together behind a commit in flight, so they form the next group."""
    plug = store.append(stream_name("es-plug"), ANY, proposed(), None)
    outcomes = await asyncio.gather(
        plug,
        *(store.append(stream, expected, events, None) for stream, expected, events in appends),
        return_exceptions=True,
    )
    return outcomes[1:]


async def test_appends_of_one_group_are_checked_in_order_and_fail_alone(
    store: EventStore,
) -> None:
    s, t, u = (stream_name(f"es-group-{name}") for name in "stu")
    e0, e1, e2, stale = (proposed() for _ in range(4))
    t0, t1 = proposed(), proposed()
    groups_before = store.groups_committed

    outcomes = await in_one_group(
        store,
        [
            (s, NO_STREAM, e0),  # creates s at revision 0
            (s, 0, e1),  # sees e0 of the same group
            (s, 0, stale),  # fails: s is at revision 1 now
            (s, 1, e2),  # not held up by the failure before it
            (s, 0, e1),  # a retry of e1: recognised by its id, nothing written
            (t, NO_STREAM, t0),
            (t, ANY, unstorable()),  # raises after writing its first event
            (t, 0, t1),  # its failure left nothing behind: t is still at revision 0
            (u, 5, proposed()),  # fails: u does not exist
            (u, NO_STREAM, proposed()),
        ],
    )

    [a_e0, a_e1, wrong, a_e2, a_retry, a_t0, error, a_t1, wrong_u, a_u] = outcomes
    assert isinstance(error, Exception)
    assert wrong == WriteResult("wrong_version", 1)
    assert wrong_u == WriteResult("wrong_version", -1)
    ok_e0, ok_e1, ok_e2, retry, ok_t0, ok_t1, ok_u = map(
        succeeded, (a_e0, a_e1, a_e2, a_retry, a_t0, a_t1, a_u)
    )

    in_s, in_t, in_u = [await stored(store, name) for name in (s, t, u)]
    assert in_s == [
        (0, ok_e0.position, e0[0].event_id),
        (1, ok_e1.position, e1[0].event_id),
        (2, ok_e2.position, e2[0].event_id),
    ]
    assert [ok_e0.revision, ok_e1.revision, ok_e2.revision] == [0, 1, 2]
    assert (retry.revision, retry.position) == (ok_e1.revision, ok_e1.position)
    assert in_t == [(0, ok_t0.position, t0[0].event_id), (1, ok_t1.position, t1[0].event_id)]
    assert [(revision, position) for revision, position, _ in in_u] == [(0, ok_u.position)]

    committed = [ok.position for ok in (ok_e0, ok_e1, ok_e2, ok_t0, ok_t1, ok_u)]
    assert committed == sorted(committed), "positions follow the order the appends arrived in"
    assert store.commits.head == committed[-1], "subscribers hear of the whole group"
    assert store.groups_committed - groups_before == 2, "the plug alone, then the ten together"


async def test_deletes_and_tombstones_in_a_group_see_the_appends_before_them(
    store: EventStore,
) -> None:
    deleted, tombstoned = stream_name("es-group-deleted"), stream_name("es-group-tomb")

    outcomes = await in_one_group(
        store,
        [
            (deleted, NO_STREAM, proposed(2)),
            (tombstoned, NO_STREAM, proposed()),
        ],
    )
    for outcome in outcomes:
        succeeded(outcome)

    plug = store.append(stream_name("es-plug"), ANY, proposed(), None)
    _, soft, tomb, after_tomb, after_delete = await asyncio.gather(
        plug,
        store.soft_delete(deleted, 1),
        store.tombstone(tombstoned, 0),
        store.append(tombstoned, ANY, proposed(), None),
        store.append(deleted, NO_STREAM, proposed(), None),
    )
    assert soft.kind == tomb.kind == "ok"
    assert after_tomb.kind == "deleted"
    assert after_delete.kind == "ok" and after_delete.revision == 2, "recreated after the delete"


def test_a_write_that_ends_the_whole_transaction_fails_alone(tmp_path: Path) -> None:
    """If SQLite gives up a group's transaction, the group is retried write by write."""
    writer = LogWriter(tmp_path / "events.sqlite")
    before, after = stream_name("es-group-before"), stream_name("es-group-after")

    def loses_the_transaction(writer: LogWriter) -> WriteResult:
        writer.append(stream_name("es-group-lost"), ANY, proposed(), None)
        writer.connection.execute("ROLLBACK")  # as SQLite does itself on some I/O errors
        raise OSError("disk trouble")

    try:
        committed = writer.commit(
            [
                lambda writer: writer.append(before, NO_STREAM, proposed(), None),
                loses_the_transaction,
                lambda writer: writer.append(after, NO_STREAM, proposed(), None),
            ]
        )
        first, lost, last = committed.outcomes
        assert isinstance(lost, OSError)
        assert succeeded(first).revision == succeeded(last).revision == 0
        assert succeeded(last).position == committed.head == writer.reader.last_position()
        assert [writer.reader.stream_info(name).last_revision for name in (before, after)] == [0, 0]
    finally:
        writer.close()


async def test_concurrent_appends_each_get_their_own_answer(
    client: AsyncClient, errors: Errors
) -> None:
    prefix = stream_name("es-group")
    shared, tombstoned = f"{prefix}-shared", f"{prefix}-tombstoned"
    await client.append_to_stream(
        shared, current_version=StreamState.NO_STREAM, events=new_events(1)
    )
    await client.tombstone_stream(tombstoned, current_version=StreamState.ANY)
    own = {f"{prefix}-own-{number}": new_events(2) for number in range(6)}
    racing = [new_events(1) for _ in range(4)]
    too_big = [NewEvent(type="Big", data=b"x" * (MIB + 1), content_type="application/octet-stream")]

    async def append(stream: str, version: int | StreamState, events: list[NewEvent]) -> object:
        try:
            return await client.append_to_stream(stream, current_version=version, events=events)
        except Exception as error:
            return error

    outcomes = await asyncio.gather(
        *(append(stream, StreamState.NO_STREAM, events) for stream, events in own.items()),
        *(append(shared, 0, events) for events in racing),  # one of them wins
        append(f"{prefix}-big", StreamState.ANY, too_big),
        append(tombstoned, StreamState.ANY, new_events(1)),
    )

    own_outcomes, racing_outcomes = outcomes[: len(own)], outcomes[len(own) : -2]
    big_outcome, tombstoned_outcome = outcomes[-2:]
    assert all(isinstance(position, int) for position in own_outcomes), own_outcomes
    for stream, events in own.items():
        assert ids(await read_stream(client, stream)) == ids(events)
    winners = [number for number, o in enumerate(racing_outcomes) if isinstance(o, int)]
    assert len(winners) == 1, racing_outcomes
    assert all(
        isinstance(o, errors.WrongCurrentVersion) for o in racing_outcomes if not isinstance(o, int)
    ), racing_outcomes
    assert ids(await read_stream(client, shared))[1:] == ids(racing[winners[0]])
    assert isinstance(big_outcome, errors.MaximumAppendSizeExceededError), big_outcome
    assert isinstance(tombstoned_outcome, errors.StreamIsDeleted), tombstoned_outcome
