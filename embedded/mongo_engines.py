"""mongoeco's storage engines, with lookups by ``_id`` that do not scan the whole collection.

Memory engine. mongoeco's memory engine finds the documents an operation may touch in
``_candidate_items_for_plan_locked``: a filter on ``_id`` equal to one value is a dictionary
lookup *when the document exists*; when it does not, and for ``_id: {$in: [...]}`` always, it
falls back to every document of the collection, each matched against the filter in Python. So an
upsert that inserts (``{_id: X}`` not there yet) and every read by a list of ids cost time in
proportion to the collection's size: a rebuild, which inserts each document once and reads the
documents of every batch by id, slows down quadratically as its collection grows (about 14 ms per
upsert at 4,000 documents, against 2 ms at any size with this change).

``IdLookupMemoryEngine`` answers those filters from the ``_id`` keys themselves when every value
is a string (a string ``_id`` equals only that string, so its storage key is the only place it can
be; other types, such as numbers, keep mongoeco's scan, since 1 and 1.0 are equal but stored
under different keys) and no collation applies. The candidates keep the collection's natural
order, and every caller still matches each candidate against the whole filter, as it does with
mongoeco's own candidates.

SQLite engine. Updates, deletes and ``find_one`` by ``_id`` look the row up by its key, but when
there is none (an upsert that inserts) they fall back to compiling the filter into SQL, and that
first asks, with one query over every document of the collection each, whether any document
holds arrays, decimals, bytes or ``undefined`` under the filter's fields; the answers are cached
only until the next write. So every upsert of a new document read the whole collection several
times over. ``IdLookupSQLiteEngine`` answers an update's or a delete's filter on one string
``_id`` (with plain comparisons beside it) from that row alone, matched in Python against the
whole filter as mongoeco's own fallback does. A find on string ``_id`` values (``$in`` or one
value, with plain comparisons beside it) went through SQL that reads every row of the
collection (a read of 70 ids took 30 ms of the server's time at 1,000 documents, 140 ms at
5,000: a rebuild, which reads the documents of every batch by id, slowed down as its collection
grew); it reads those rows by their key instead, and matches them in Python the same way.

Written against mongoeco 4.11.0 (pinned in ``pyproject.toml``); ``tests/embedded`` checks that
the hooks still exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from mongoeco.core.filtering import QueryEngine
from mongoeco.core.query_plan import (
    AndCondition,
    EqualsCondition,
    ExistsCondition,
    GreaterThanCondition,
    GreaterThanOrEqualCondition,
    InCondition,
    LessThanCondition,
    LessThanOrEqualCondition,
    NotEqualsCondition,
    NotInCondition,
    QueryNode,
)
from mongoeco.engines import MemoryEngine, SQLiteEngine
from mongoeco.engines._memory_collection import MemoryCollection
from mongoeco.engines._sqlite_connection import sqlite_read_scope
from mongoeco.engines.semantic_core import FiniteDocumentScan

# Keys per SQLite query: under SQLite's limit of bound parameters (999 before SQLite 3.32).
KEYS_PER_QUERY = 900

# Conditions QueryEngine.match_plan decides from the document alone (no variables, no $expr).
PLAIN_CONDITIONS = (
    EqualsCondition,
    NotEqualsCondition,
    InCondition,
    NotInCondition,
    GreaterThanCondition,
    GreaterThanOrEqualCondition,
    LessThanCondition,
    LessThanOrEqualCondition,
    ExistsCondition,
)


def string_ids(plan: QueryNode) -> tuple[str, ...] | None:
    """The ``_id`` values ``plan`` restricts its documents to, when it is an equality or ``$in``
    on ``_id`` of strings only, alone or as a clause of an ``$and``; None otherwise."""
    values: Iterable[Any] | None = None
    if isinstance(plan, EqualsCondition) and plan.field == "_id":
        values = (plan.value,)
    elif isinstance(plan, InCondition) and plan.field == "_id":
        values = plan.values
    elif isinstance(plan, AndCondition):
        for clause in plan.clauses:
            found = string_ids(clause)
            if found is not None:
                return found
        return None
    if values is None:
        return None
    ids = tuple(values)
    return ids if all(type(value) is str for value in ids) else None


def plain(plan: QueryNode) -> bool:
    """Whether ``plan`` is made of plain comparisons only, joined by ``$and``."""
    if isinstance(plan, AndCondition):
        return all(plain(clause) for clause in plan.clauses)
    return isinstance(plan, PLAIN_CONDITIONS)


class IdLookupMemoryEngine(MemoryEngine):
    """mongoeco's memory engine; filters on string ``_id`` values look the keys up."""

    def _candidate_items_for_plan_locked(
        self,
        coll: dict[Any, Any],
        query_plan: QueryNode,
        *,
        collation: Any = None,
        natural_order_limit: int | None = None,
        **options: Any,
    ) -> list[tuple[Any, Any]]:
        ids = string_ids(query_plan) if collation is None else None
        if ids is None:
            candidates: list[tuple[Any, Any]] = super()._candidate_items_for_plan_locked(
                coll,
                query_plan,
                collation=collation,
                natural_order_limit=natural_order_limit,
                **options,
            )
            return candidates
        keys = {self._storage_key(value) for value in ids}
        if isinstance(coll, MemoryCollection):
            ordered = coll.ordered_keys(keys, limit=natural_order_limit)
        else:  # a plain dict (mongoeco keeps this for storage handed in from outside)
            ordered = [key for key in coll if key in keys][:natural_order_limit]
        return [(key, coll[key]) for key in ordered]


class IdLookupSQLiteEngine(SQLiteEngine):
    """mongoeco's SQLite engine; an update's or delete's filter on one string ``_id`` reads
    that row only."""

    def _select_first_document_for_plan(
        self,
        db_name: str,
        coll_name: str,
        plan: QueryNode,
        *,
        hint: Any = None,
        context: Any = None,
    ) -> tuple[str, dict[str, Any]] | None:
        ids = string_ids(plan)
        if hint is not None or ids is None or len(set(ids)) != 1 or not plain(plan):
            selected: tuple[str, dict[str, Any]] | None = super()._select_first_document_for_plan(
                db_name, coll_name, plan, hint=hint, context=context
            )
            return selected
        conn = self._require_connection(context)
        with self._bind_connection(conn), sqlite_read_scope(conn):
            row = conn.execute(
                "SELECT storage_key, document FROM documents "
                "WHERE db_name = ? AND coll_name = ? AND storage_key = ?",
                (db_name, coll_name, self._storage_key(ids[0])),
            ).fetchone()
        if row is None:
            return None
        storage_key, payload = row
        document = self._deserialize_document(payload)
        return (storage_key, document) if QueryEngine.match_plan(document, plan) else None

    def _open_scan_documents_sync(self, reader: Any) -> Any:
        """The documents a find returns; one on string ``_id`` values reads only their rows.
        Called by mongoeco's reader with the read's connection bound."""
        semantics = reader.semantics
        ids = string_ids(semantics.query_plan)
        if (
            ids is None
            or not plain(semantics.query_plan)
            or semantics.text_query is not None
            or semantics.sort is not None
            or semantics.collation is not None
            or semantics.hint is not None
            or self._is_profile_namespace(reader.coll_name)
        ):
            return super()._open_scan_documents_sync(reader)
        keys = sorted({self._storage_key(value) for value in ids})
        rows: list[tuple[str]] = []
        conn = self._require_connection(reader.context)
        for start in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[start : start + KEYS_PER_QUERY]
            rows += conn.execute(
                "SELECT document FROM documents WHERE db_name = ? AND coll_name = ? "
                f"AND storage_key IN ({', '.join('?' * len(chunk))}) ORDER BY storage_key",
                (reader.db_name, reader.coll_name, *chunk),
            ).fetchall()
        documents = (self._deserialize_document(payload) for (payload,) in rows)
        # Matched against the whole filter, skipped, limited and projected as mongoeco's own
        # Python fallback does with every document of the collection.
        return FiniteDocumentScan(documents, replace(semantics, compiled_query=None))
