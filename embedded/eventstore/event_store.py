"""The asyncio face of the storage: SQLite work off the event loop, and commit notifications.

Writes go to one dedicated thread (the `LogWriter`), a group at a time (`GroupCommit`: writes
that arrive during a commit share the next one), reads to a small pool of threads that each
keep their own connection, so a long read or a slow subscriber never holds up a write. After each
commit every waiting subscriber is woken through `CommitSignal`; subscribers then re-query from
their own cursor, so nothing is buffered per subscriber.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate

from embedded.eventstore.expected_revision import Expected
from embedded.eventstore.group_commit import GroupCommit
from embedded.eventstore.records import ProposedEvent, WriteResult
from embedded.eventstore.storage import LogReader, connect_reader
from embedded.eventstore.writer import LogWriter, Work

READER_THREADS = 4


class CommitSignal:
    """The newest committed position, and a way to wait until it moves past a point."""

    def __init__(self, head: int) -> None:
        self.head = head
        self._moved = asyncio.Event()

    def publish(self, position: int) -> None:
        """Called on the event loop after a commit that ends at `position`."""
        if position <= self.head:
            return  # nothing new (the commit wrote no event): no subscriber needs to look
        self.head = position
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait_beyond(self, position: int) -> None:
        """Return once something at a position above `position` has been committed."""
        while self.head <= position:
            await self._moved.wait()


class EventStore:
    """Open with `await EventStore.open(path)`; close with `await store.close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="eventstore-writer")
        self._reader_threads = ThreadPoolExecutor(
            READER_THREADS, thread_name_prefix="eventstore-reader"
        )
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._writer: LogWriter | None = None
        self._group_commit: GroupCommit | None = None
        self.commits = CommitSignal(0)

    @classmethod
    async def open(cls, path: Path) -> EventStore:
        store = cls(path)
        loop = asyncio.get_running_loop()
        writer = await loop.run_in_executor(store._writer_thread, LogWriter, path)
        store._writer = writer
        store.commits.head = writer.last_position
        store._group_commit = GroupCommit(writer, store._writer_thread, store.commits.publish)
        return store

    @property
    def groups_committed(self) -> int:
        """Write transactions committed so far; fewer than the writes when they were grouped."""
        return 0 if self._group_commit is None else self._group_commit.groups_committed

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._group_commit is not None:
            await self._group_commit.drain()
        writer = self._writer
        if writer is not None:
            await loop.run_in_executor(self._writer_thread, writer.close)
        await loop.run_in_executor(None, self._shutdown_threads)

    def _shutdown_threads(self) -> None:
        self._writer_thread.shutdown(wait=True)
        self._reader_threads.shutdown(wait=True)
        with self._connections_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()

    async def append(
        self,
        stream: str,
        expected: Expected,
        events: Sequence[ProposedEvent],
        deadline: float | None,
    ) -> WriteResult:
        size = sum(event.size() for event in events)
        return await self._write(
            lambda writer: writer.append(stream, expected, events, deadline), size
        )

    async def soft_delete(self, stream: str, expected: Expected) -> WriteResult:
        return await self._write(lambda writer: writer.soft_delete(stream, expected))

    async def tombstone(self, stream: str, expected: Expected) -> WriteResult:
        return await self._write(lambda writer: writer.tombstone(stream, expected))

    async def _write(self, work: Work, size: int = 0) -> WriteResult:
        group_commit = self._group_commit
        assert group_commit is not None, "EventStore.open() was not awaited"
        # Shielded: once queued, the write completes even if the caller's RPC is cancelled.
        return await asyncio.shield(group_commit.submit(work, size))

    async def read[**P, T](
        self, query: Callable[Concatenate[LogReader, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `query(reader, *args)` on a reader thread with that thread's own connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_threads, functools.partial(self._run_read, query, *args, **kwargs)
        )

    def _run_read[**P, T](
        self, query: Callable[Concatenate[LogReader, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        reader: LogReader | None = getattr(self._local, "reader", None)
        if reader is None:
            connection = connect_reader(self.path)
            with self._connections_lock:
                self._reader_connections.append(connection)
            reader = LogReader(connection)
            self._local.reader = reader
        return query(reader, *args, **kwargs)
