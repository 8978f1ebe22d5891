"""The single writer: appends, soft deletes and tombstones, committed a group at a time.

All methods run on one dedicated thread with one connection, so positions are handed out in
commit order and the expected-revision check and the write see the same state. `commit` runs a
group of writes in one transaction (group commit: one fsync for all of them), each in order and
each against the state the earlier ones left, each inside its own savepoint so one that fails
leaves no trace and fails alone. Nothing is acknowledged (nor announced to subscribers) before
COMMIT has returned, and with `synchronous=FULL` a returned COMMIT is on disk.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedded.eventstore import expected_revision as rules
from embedded.eventstore.expected_revision import TOMBSTONE_REVISION, Expected, Verdict
from embedded.eventstore.records import (
    METADATA_EVENT_TYPE,
    METASTREAM_PREFIX,
    TOMBSTONE_EVENT_TYPE,
    WRITE_DELETED,
    WRITE_TIMEOUT,
    ProposedEvent,
    WriteResult,
    metastream_of,
)
from embedded.eventstore.storage import LogReader, connect, initialise, parse_metadata

# Positions imitate EventStoreDB's byte offsets in its log: gaps between events are normal.
_RECORD_OVERHEAD = 96
_MAX_INT64 = 2**63 - 1

# A fresh EventStoreDB log starts with system events; clients must cope with them.
_FIRST_SYSTEM_STREAM = "$$$scavenges"
_FIRST_SYSTEM_DATA = b'{"$maxAge":2592000}'


type Work = Callable[[LogWriter], WriteResult]
"""One write of a group: a `LogWriter` method call, run inside the group's transaction."""


@dataclass(frozen=True)
class Committed:
    """What a group's commit answers: one outcome per write, in order, and the new head."""

    outcomes: list[WriteResult | Exception]  # an Exception: that write failed and left nothing
    head: int  # position of the newest event after the commit


def now_ticks() -> int:
    """.NET ticks (100 ns) since the Unix epoch, as EventStoreDB reports `created`."""
    return time.time_ns() // 100


class LogWriter:
    """Owns the write connection. Call every method from the same (writer) thread."""

    def __init__(self, path: Path) -> None:
        self.connection = connect(path)
        initialise(self.connection)
        self.reader = LogReader(self.connection)
        self.last_position = self.reader.last_position()
        if self.last_position == 0:
            self._commit_together([_write_first_system_event], savepoints=False)

    def close(self) -> None:
        self.connection.close()

    def commit(self, works: Sequence[Work]) -> Committed:
        """Run `works` in order in one transaction and COMMIT once.

        Each write sees the ones before it (an expected revision counts the group's earlier
        appends). A write that raises is rolled back to its savepoint and reported as its
        outcome; the others still commit. Should the transaction itself fail (COMMIT cannot
        write, or SQLite gave up the transaction), nothing of it is stored, and each write is
        run again in a transaction of its own so that only the writes that fail by themselves
        fail.
        """
        if len(works) > 1:
            try:
                return self._commit_together(works, savepoints=True)
            except sqlite3.Error:
                pass
        return Committed([self._commit_alone(work) for work in works], self.last_position)

    def _commit_alone(self, work: Work) -> WriteResult | Exception:
        try:
            return self._commit_together([work], savepoints=False).outcomes[0]
        except Exception as error:
            return error

    def _commit_together(self, works: Sequence[Work], savepoints: bool) -> Committed:
        """One transaction; on any exception it is rolled back and the exception raised."""
        start_position = self.last_position
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            if savepoints:
                outcomes = [self._run_in_savepoint(work) for work in works]
            else:
                outcomes = [work(self) for work in works]
            self.connection.execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            self.last_position = start_position
            raise
        return Committed(outcomes, self.last_position)

    def _run_in_savepoint(self, work: Work) -> WriteResult | Exception:
        """Run one write of a group; if it raises, undo just its changes and return the error.

        A failing ROLLBACK TO (SQLite dropped the whole transaction) raises: the group fails.
        """
        start_position = self.last_position
        self.connection.execute("SAVEPOINT write")
        try:
            outcome = work(self)
        except Exception as error:
            self.connection.execute("ROLLBACK TO write")
            self.connection.execute("RELEASE write")
            self.last_position = start_position
            return error
        self.connection.execute("RELEASE write")
        return outcome

    def append(
        self,
        stream: str,
        expected: Expected,
        events: Sequence[ProposedEvent],
        deadline: float | None,
    ) -> WriteResult:
        """Append atomically after checking `expected` (rules 1-6); see `WriteResult`.

        Like `soft_delete` and `tombstone`, a `Work` for `commit`: it runs inside a transaction.
        """
        if deadline is not None and time.monotonic() > deadline:
            return WRITE_TIMEOUT
        info = self.reader.stream_info(stream)
        facts = info.facts(self.reader.has_metadata(stream))
        if events:
            decision = rules.decide_append(
                facts,
                expected,
                [event.event_id for event in events],
                lambda revision, count: self.reader.ids_from(stream, revision, count),
                lambda event_id: self.reader.revision_of(stream, event_id),
            )
        else:
            decision = rules.decide_without_events(facts, expected)
        if decision.verdict is Verdict.DELETED:
            return WRITE_DELETED
        if decision.verdict is Verdict.WRONG_VERSION:
            return WriteResult("wrong_version", info.last_revision)
        if decision.verdict is Verdict.IDEMPOTENT:
            revision = decision.matched_revision
            return WriteResult("ok", revision, self.reader.position_of(stream, revision))
        if not events:
            return WriteResult("ok", info.last_revision, None)
        revision, position = self._write(stream, info.last_revision, events)
        if info.soft_deleted:
            # Undelete: earlier revisions stay hidden, the stream goes on from here.
            self._write_metadata(stream, {"$tb": info.last_revision + 1})
        return WriteResult("ok", revision, position)

    def soft_delete(self, stream: str, expected: Expected) -> WriteResult:
        """Hide every revision so far by setting the stream's `$tb` to the maximum."""
        info = self.reader.stream_info(stream)
        decision = rules.decide_soft_delete(info.facts(self.reader.has_metadata(stream)), expected)
        if decision.verdict is Verdict.DELETED:
            return WRITE_DELETED
        if decision.verdict is not Verdict.APPEND:
            return WriteResult("wrong_version", info.last_revision)
        position = self._write_metadata(stream, {"$tb": TOMBSTONE_REVISION})
        return WriteResult("ok", info.last_revision, position)

    def tombstone(self, stream: str, expected: Expected) -> WriteResult:
        """Delete for good: a `$streamDeleted` event at the maximum revision."""
        info = self.reader.stream_info(stream)
        facts = info.facts(self.reader.has_metadata(stream))
        decision = rules.decide_without_events(facts, expected)
        if decision.verdict is Verdict.DELETED:
            return WRITE_DELETED
        if decision.verdict is not Verdict.APPEND:
            return WriteResult("wrong_version", info.last_revision)
        event = ProposedEvent(str(uuid.uuid4()), TOMBSTONE_EVENT_TYPE, False, b"", b"")
        _, position = self._write(stream, TOMBSTONE_REVISION - 1, [event], update_stream=False)
        self.connection.execute(
            "INSERT INTO streams (name, last_revision, tombstoned) VALUES (?, ?, 1)"
            " ON CONFLICT (name) DO UPDATE SET tombstoned = 1",
            (stream, info.last_revision),
        )
        return WriteResult("ok", TOMBSTONE_REVISION, position)

    def _write(
        self,
        stream: str,
        last_revision: int,
        events: Sequence[ProposedEvent],
        update_stream: bool = True,
    ) -> tuple[int, int]:
        """Insert events after `last_revision`; returns the last revision and position."""
        created = now_ticks()
        rows = []
        revision = last_revision
        for event in events:
            revision += 1
            self.last_position += _RECORD_OVERHEAD + len(stream.encode()) + event.size()
            rows.append(
                (
                    self.last_position,
                    stream,
                    revision,
                    event.event_id,
                    event.event_type,
                    int(event.is_json),
                    created,
                    event.custom_metadata,
                    event.data,
                )
            )
        self.connection.executemany(
            "INSERT INTO events (position, stream, revision, event_id, event_type, is_json,"
            " created, custom_metadata, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if update_stream:
            self.connection.execute(
                "INSERT INTO streams (name, last_revision) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET last_revision = excluded.last_revision",
                (stream, revision),
            )
            self._apply_metadata_events(stream, events)
        return revision, self.last_position

    def _write_metadata(self, stream: str, changes: dict[str, Any]) -> int:
        """Append a `$metadata` event to `$$stream`, keeping its other settings."""
        metadata = self.reader.stream_metadata(stream) | changes
        metastream = metastream_of(stream)
        event = ProposedEvent(
            str(uuid.uuid4()),
            METADATA_EVENT_TYPE,
            True,
            b"",
            json.dumps(metadata, separators=(",", ":")).encode(),
        )
        last_revision = self.reader.stream_info(metastream).last_revision
        return self._write(metastream, last_revision, [event])[1]

    def _apply_metadata_events(self, stream: str, events: Sequence[ProposedEvent]) -> None:
        """A `$metadata` event in `$$x` sets what stream reads of `x` hide (`$tb`, `$maxCount`)."""
        if not stream.startswith(METASTREAM_PREFIX):
            return
        settings = [e for e in events if e.event_type == METADATA_EVENT_TYPE]
        if not settings:
            return
        metadata = parse_metadata(settings[-1].data)
        self.connection.execute(
            "INSERT INTO streams (name, last_revision, truncate_before, max_count)"
            " VALUES (?, -1, ?, ?) ON CONFLICT (name) DO UPDATE SET"
            " truncate_before = excluded.truncate_before, max_count = excluded.max_count",
            (
                stream[len(METASTREAM_PREFIX) :],
                _count_setting(metadata.get("$tb")),
                _count_setting(metadata.get("$maxCount")),
            ),
        )


def _count_setting(value: object) -> int | None:
    """A non-negative 64-bit integer setting, or None (ignored) for anything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= _MAX_INT64 else None


def _write_first_system_event(writer: LogWriter) -> WriteResult:
    event = ProposedEvent(str(uuid.uuid4()), METADATA_EVENT_TYPE, True, b"", _FIRST_SYSTEM_DATA)
    revision, position = writer._write(_FIRST_SYSTEM_STREAM, -1, [event])
    return WriteResult("ok", revision, position)
