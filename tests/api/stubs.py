"""Stand-ins for the API tests, which exercise the command side only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from shared.ports.document_store import Document, Filter, IndexSpec, WriteOp, WriteResult
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import (
    AppendResult,
    ConcurrencyError,
    ExpectedRevision,
    NewEvent,
    RecordedEvent,
)
from tests.fakes.event_store import InMemoryEventStore


class UnusedDocumentStore:
    """A document store the command tests never reach: every call says MongoDB is down."""

    def _down(self) -> StoreUnavailable:
        return StoreUnavailable("mongodb", "not used by the command API tests")

    async def find_one(self, collection: str, filter: Filter) -> Document | None:
        raise self._down()

    async def find(self, collection: str, filter: Filter, **_: Any) -> list[Document]:
        raise self._down()

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        raise self._down()

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        raise self._down()

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexSpec]) -> None:
        raise self._down()

    async def drop_collection(self, collection: str) -> None:
        raise self._down()

    async def list_collections(self) -> list[str]:
        raise self._down()

    async def ping(self) -> None:
        raise self._down()

    async def close(self) -> None:
        return None


class UnavailableEventStore:
    """An event store that is down: every call raises StoreUnavailable, as the adapter does
    once its retry budget is spent."""

    def __init__(self, retry_after_s: int = 3) -> None:
        self.retry_after_s = retry_after_s

    def _down(self) -> StoreUnavailable:
        return StoreUnavailable("eventstore", "ServiceUnavailable", self.retry_after_s)

    async def append(
        self, stream: str, expected: ExpectedRevision, events: Sequence[NewEvent]
    ) -> AppendResult:
        raise self._down()

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        raise self._down()

    async def subscribe_all(
        self, after_position: int | None, event_types: Sequence[str]
    ) -> AsyncIterator[Any]:
        raise self._down()
        yield  # pragma: no cover

    async def head_position(self, event_types: Sequence[str]) -> int:
        raise self._down()

    async def ping(self) -> None:
        raise self._down()

    async def close(self) -> None:
        return None


class HotStream(InMemoryEventStore):
    """Every append after the first loses to a (simulated) concurrent writer."""

    def __init__(self) -> None:
        super().__init__()
        self.appends = 0

    async def append(
        self, stream: str, expected: ExpectedRevision, events: Sequence[NewEvent]
    ) -> AppendResult:
        self.appends += 1
        if self.appends > 1:
            raise ConcurrencyError(stream, expected, actual=99)
        return await super().append(stream, expected, events)
