"""The document store port: what the projector and the read side need from MongoDB.

Operations are the project's own value types so that no driver type leaks out of the adapter
(``shared/motor_document_store.py``, the only module that imports motor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Document = dict[str, Any]
Filter = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UpdateOne:
    """Update the first document matching ``filter`` (``update`` may be an operator document
    or an aggregation pipeline); insert one when nothing matches and ``upsert`` is true."""

    filter: Filter
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    upsert: bool = False


@dataclass(frozen=True, slots=True)
class ReplaceOne:
    filter: Filter
    replacement: Mapping[str, Any]
    upsert: bool = False


@dataclass(frozen=True, slots=True)
class DeleteOne:
    filter: Filter


WriteOp = UpdateOne | ReplaceOne | DeleteOne


@dataclass(frozen=True, slots=True)
class IndexSpec:
    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    name: str | None = None
    partial_filter: Mapping[str, Any] | None = field(default=None)


class DocumentStore(Protocol):
    async def find_one(self, collection: str, filter: Filter) -> Document | None:
        """The first matching document, or None."""
        ...

    async def find(
        self,
        collection: str,
        filter: Filter,
        *,
        sort: Sequence[tuple[str, int]] = (),
        limit: int = 0,
    ) -> list[Document]:
        """Matching documents in ``sort`` order; ``limit`` 0 means no limit."""
        ...

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> None:
        """Apply ``ops`` in order, sent in chunks of at most 200. A duplicate-key error from an
        upsert whose filter did not match (a conditional update of a document already past
        that position) is not an error: the op changed nothing, by design."""
        ...

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexSpec]) -> None: ...

    async def drop_collection(self, collection: str) -> None: ...

    async def list_collections(self) -> list[str]: ...

    async def ping(self) -> None:
        """Raises StoreUnavailable when the server cannot be reached."""
        ...

    async def close(self) -> None: ...
