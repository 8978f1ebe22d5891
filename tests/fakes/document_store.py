"""A document store that delegates to a real one: subclass it to inject faults or races."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.ports.document_store import (
    Document,
    DocumentStore,
    Filter,
    IndexSpec,
    WriteOp,
    WriteResult,
)


class DelegatingDocumentStore:
    """Every call goes to ``inner``; override the ones a test needs to change, or
    ``before_read`` to make every read of a collection fail."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner

    def before_read(self, collection: str) -> None:
        """Called before each read (find_one, find, find_by_ids); raise to fail it."""

    async def find_one(self, collection: str, filter: Filter) -> Document | None:
        self.before_read(collection)
        return await self.inner.find_one(collection, filter)

    async def find(self, collection: str, filter: Filter, **options: Any) -> list[Document]:
        self.before_read(collection)
        return await self.inner.find(collection, filter, **options)

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        self.before_read(collection)
        return await self.inner.find_by_ids(collection, ids)

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        return await self.inner.bulk_write(collection, ops)

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexSpec]) -> None:
        await self.inner.ensure_indexes(collection, indexes)

    async def drop_collection(self, collection: str) -> None:
        await self.inner.drop_collection(collection)

    async def list_collections(self) -> list[str]:
        return await self.inner.list_collections()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
