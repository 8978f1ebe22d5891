"""SQLite schema, connections and the read queries over the event log.

One file in WAL mode: a single writer connection (see `writer.py`) and any number of reader
connections, so readers never wait for the writer nor see an append before it commits.
`synchronous=FULL` makes every committed append durable before it is acknowledged.

`events` is the log (`$all`): one row per event keyed by its position. `streams` keeps each
stream's last revision, tombstone flag and the parts of its metadata that hide events from
stream reads (`$tb`, `$maxCount`).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from embedded.eventstore.records import (
    CUSTOM_METADATA,
    DATA,
    METADATA_EVENT_TYPE,
    EventRow,
    StreamInfo,
    metastream_of,
    original_stream_of,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    revision INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    is_json INTEGER NOT NULL,
    created INTEGER NOT NULL,
    custom_metadata BLOB NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (stream, revision)
);
CREATE INDEX IF NOT EXISTS events_by_id ON events (event_id);
CREATE TABLE IF NOT EXISTS streams (
    name TEXT PRIMARY KEY,
    last_revision INTEGER NOT NULL,
    truncate_before INTEGER,
    max_count INTEGER,
    tombstoned INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

# The columns of an `EventRow`, in its order.
EVENT_COLUMNS = (
    "position, stream, revision, event_id, event_type, is_json, created, custom_metadata, data"
)


# A page stops early past this many bytes of event payload (events may be up to 1 MiB each).
PAGE_BYTES = 4 * 1024 * 1024


class Page(NamedTuple):
    rows: list[EventRow]
    more: bool  # stopped at its row or byte limit: there may be more after the last event


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the durability settings every connection must share."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def connect_reader(path: Path) -> sqlite3.Connection:
    """A connection for the reader threads; `query_only` makes a stray write fail loudly."""
    connection = connect(path)
    connection.execute("PRAGMA query_only = ON")
    return connection


def initialise(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL and create the tables (idempotent)."""
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"SQLite refused WAL mode (got {mode!r})")
    connection.executescript(SCHEMA)


class LogReader:
    """Read queries on one connection. Each method is one statement, so it sees one snapshot."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def last_position(self) -> int:
        """Position of the newest event, 0 for an empty log."""
        row = self.connection.execute("SELECT MAX(position) FROM events").fetchone()
        return int(row[0] or 0)

    def is_read_start(self, position: int) -> bool:
        """Whether an `$all` read or subscription may start at `position`.

        EventStoreDB positions are byte offsets of log records; a read from inside a record
        fails with InvalidPosition. Here the records are the events, so a valid start is an
        event's position, 0 (the start of the log) or anything after the newest event (the
        end of the log, as past EventStoreDB's writer checkpoint).
        """
        row = self.connection.execute(
            "SELECT MIN(position) FROM events WHERE position >= ?", (position,)
        ).fetchone()
        return position == 0 or row[0] is None or row[0] == position

    def stream_info(self, name: str) -> StreamInfo:
        row = self.connection.execute(
            "SELECT last_revision, truncate_before, max_count, tombstoned"
            " FROM streams WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return StreamInfo(name)
        return StreamInfo(name, row[0], row[1], row[2], bool(row[3]))

    def readable_stream_info(self, name: str) -> StreamInfo:
        """`stream_info` as reads see it: the metastream of a tombstoned stream is deleted too.

        EventStoreDB answers StreamDeleted for reads of `$$name` once `name` is tombstoned, yet
        still accepts appends to `$$name` (checked against its own revisions), so only reads
        take this view; the writer uses `stream_info`.
        """
        info = self.stream_info(name)
        original = original_stream_of(name)
        if info.tombstoned or original is None or not self.stream_info(original).tombstoned:
            return info
        return dataclasses.replace(info, tombstoned=True)

    def has_metadata(self, name: str) -> bool:
        """Whether `$$name` has events (lets `stream_exists` pass on a stream without events)."""
        return self.stream_info(metastream_of(name)).exists

    def stream_page(self, name: str, revision: int, forwards: bool, limit: int) -> Page:
        """Events of a stream from `revision` inclusive, in the given direction."""
        if forwards:
            sql = "WHERE stream = ? AND revision >= ? ORDER BY revision ASC LIMIT ?"
        else:
            sql = "WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?"
        return self._page(f"SELECT {EVENT_COLUMNS} FROM events {sql}", (name, revision, limit))

    def all_page(self, position: int, forwards: bool, inclusive: bool, limit: int) -> Page:
        """Events of `$all` from `position`, in the given direction."""
        if forwards:
            operator, order = (">=" if inclusive else ">"), "ASC"
        else:
            operator, order = ("<=" if inclusive else "<"), "DESC"
        return self._page(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE position {operator} ?"
            f" ORDER BY position {order} LIMIT ?",
            (position, limit),
        )

    def _page(self, sql: str, parameters: tuple[Any, ...]) -> Page:
        """Rows up to the LIMIT in `parameters` or PAGE_BYTES, whichever comes first."""
        limit = parameters[-1]
        cursor = self.connection.execute(sql, parameters)
        try:
            rows: list[EventRow] = []
            size = 0
            for row in cursor:
                rows.append(row)
                size += len(row[CUSTOM_METADATA]) + len(row[DATA])
                if len(rows) >= limit or size >= PAGE_BYTES:
                    return Page(rows, more=True)
            return Page(rows, more=False)
        finally:
            cursor.close()  # ends the statement, so the read snapshot is released

    def event_at(self, name: str, revision: int) -> EventRow | None:
        row: EventRow | None = self.connection.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream = ? AND revision = ?",
            (name, revision),
        ).fetchone()
        return row

    def ids_from(self, name: str, revision: int, count: int) -> list[str]:
        rows = self.connection.execute(
            "SELECT event_id FROM events WHERE stream = ? AND revision >= ?"
            " ORDER BY revision ASC LIMIT ?",
            (name, revision, count),
        ).fetchall()
        return [row[0] for row in rows]

    def revision_of(self, name: str, event_id: str) -> int | None:
        row = self.connection.execute(
            "SELECT MIN(revision) FROM events WHERE event_id = ? AND stream = ?",
            (event_id, name),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def position_of(self, name: str, revision: int) -> int | None:
        row = self.connection.execute(
            "SELECT position FROM events WHERE stream = ? AND revision = ?", (name, revision)
        ).fetchone()
        return None if row is None else int(row[0])

    def stream_metadata(self, name: str) -> dict[str, Any]:
        """The latest `$metadata` of a stream as a JSON object ({} when absent or unreadable)."""
        row = self.connection.execute(
            "SELECT event_type, data FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1",
            (metastream_of(name),),
        ).fetchone()
        if row is None or row[0] != METADATA_EVENT_TYPE:
            return {}
        return parse_metadata(bytes(row[1]))


def parse_metadata(data: bytes) -> dict[str, Any]:
    """Stream metadata is a JSON object; anything else counts as no metadata."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
