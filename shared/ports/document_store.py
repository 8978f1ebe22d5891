"""The document store port: what the projector and the read side need from MongoDB.

Operations are the project's own value types so that no driver type leaks out of the adapter
(``shared/adapters/motor_document_store.py``, the only module that imports motor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import ServiceError

Document = dict[str, Any]
Filter = Mapping[str, Any]
# The most values one query's ``$in`` (and one bulk write) may carry: the embedded MongoDB
# server fails at 496 ``$in`` values (SQLite's expression depth) and slows down sharply on
# larger writes. Callers with more ids use ``find_by_ids``; ``find`` refuses a longer ``$in``.
MAX_BATCH = 200


class DocumentStoreError(ServiceError):
    """MongoDB rejected an operation (not an outage): a bug in the operation or a broken
    constraint such as a unique index. Retrying the same operation fails the same way.
    ``op_index`` is the failing operation's index in the ``bulk_write`` call, when known."""

    def __init__(self, collection: str, reason: str, op_index: int | None = None) -> None:
        self.collection = collection
        self.reason = reason
        self.op_index = op_index
        where = f" (operation {op_index})" if op_index is not None else ""
        super().__init__(f"mongodb rejected an operation on {collection!r}{where}: {reason}")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a ``bulk_write`` did. ``changed`` counts the operations that inserted, replaced,
    modified or removed a document; a conditional operation whose filter matched nothing (or,
    for a ``$setOnInsert`` upsert, matched an existing document) did not change anything."""

    changed: int


def longest_in(filter: Filter) -> int:
    """The number of values of the longest ``$in`` anywhere in ``filter``."""
    longest = 0
    stack: list[Any] = [filter]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "$in" and isinstance(value, list | tuple):
                    longest = max(longest, len(value))
                stack.append(value)
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return longest


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
        """Matching documents in ``sort`` order; ``limit`` 0 means no limit. A filter with an
        ``$in`` of more than ``MAX_BATCH`` values raises ValueError: use ``find_by_ids``."""
        ...

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        """The documents whose ``_id`` is in ``ids`` (any number of them: queried in chunks of
        at most ``MAX_BATCH``), in no particular order; missing ids are left out."""
        ...

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        """Apply ``ops`` in order, sent in chunks of at most ``MAX_BATCH``. A duplicate-key
        error from an upsert whose filter did not match (a conditional update of a document
        already past that position) is not an error: the op changed nothing, by design, and is
        not counted in the result."""
        ...

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexSpec]) -> None: ...

    async def drop_collection(self, collection: str) -> None: ...

    async def list_collections(self) -> list[str]: ...

    async def ping(self) -> None:
        """Raises StoreUnavailable when the server cannot be reached."""
        ...

    async def close(self) -> None: ...
