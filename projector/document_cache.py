"""The read-model documents this projector wrote (or read) last, so the next batch on them need
not read them back from MongoDB.

A live projector keeps changing the same few documents (a customer's summary, today's sales, an
order taking its next command), and reading each back before folding the next batch into it
costs a MongoDB round trip per collection per batch. The dispatcher folds into the copy kept
here instead, and reads only the documents it does not hold.

This is safe because every write is compare-and-set on the ``_position`` the document was folded
from (``projector.dispatch.compare_and_set``): a kept copy that is no longer what MongoDB holds
(another writer moved the document) makes its write match nothing, and the dispatcher then reads
every document of the batch from MongoDB and folds again, as it does for any lost
compare-and-set. A copy is dropped before its document is written (a write that fails midway
leaves it unknown) and kept again only once the write took effect.

Bounded: the least recently used documents go first. Keyed by collection, so a version a
rebuild switched to never sees the documents of the one before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from shared.ports.document_store import Document

# Documents kept across all collections: the hot ones of a live projector, a few MiB.
CAPACITY = 4096


class DocumentCache:
    """Documents by (collection, ``_id``), as they stand in MongoDB after this process's last
    read or write of them. Projections never change the documents they are given, so a kept
    document is shared, not copied."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must not be negative, got {capacity}")
        self._capacity = capacity
        self._documents: OrderedDict[tuple[str, str], Document] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def take(self, collection: str, ids: Sequence[str]) -> tuple[dict[str, Document], list[str]]:
        """The kept documents among ``ids`` by ``_id``, and the ids not kept (to be read)."""
        found: dict[str, Document] = {}
        missing: list[str] = []
        for document_id in ids:
            key = (collection, document_id)
            document = self._documents.get(key)
            if document is None:
                missing.append(document_id)
            else:
                self._documents.move_to_end(key)
                found[document_id] = document
        return found, missing

    def keep(self, collection: str, documents: Mapping[str, Document]) -> None:
        """Remember ``documents`` (by ``_id``) as MongoDB holds them now."""
        for document_id, document in documents.items():
            key = (collection, document_id)
            self._documents[key] = document
            self._documents.move_to_end(key)
        while len(self._documents) > self._capacity:
            self._documents.popitem(last=False)

    def drop(self, collection: str, ids: Iterable[str]) -> None:
        """Forget these documents (about to be written, or no longer known)."""
        for document_id in ids:
            self._documents.pop((collection, document_id), None)

    def clear(self) -> None:
        self._documents.clear()
