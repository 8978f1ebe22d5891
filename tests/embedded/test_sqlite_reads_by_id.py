"""embedded-mongo's SQLite engine: a find on string ``_id`` values reads those rows by key, not
the whole collection, and answers as mongoeco does (``embedded/mongo_engines.py``)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from mongoeco import AsyncMongoClient
from mongoeco.engines import SQLiteEngine

from embedded import mongo_engines
from embedded.mongo_engines import IdLookupSQLiteEngine
from tests.embedded.compiles import CompileCount

DOCUMENTS = 300


async def reads(engine: Any) -> list[Any]:
    """What finds on ``_id`` answer: with other conditions, projections, skip and limit, ids
    of other types, and a sort or a collation (which take mongoeco's own path)."""
    async with AsyncMongoClient(engine) as client:
        orders = client["db"]["orders"]
        for n in range(DOCUMENTS):
            await orders.replace_one({"_id": f"o{n}"}, {"n": n, "_position": n}, upsert=True)
        await orders.insert_one({"_id": 7, "n": "an int id"})
        ids = ["o250", "o3", "missing", "o3", "o40", "o100"]
        found: list[Any] = [
            await orders.find({"_id": {"$in": ids}}).to_list(None),
            await orders.find({"_id": {"$in": ids}, "n": {"$gte": 40}}).to_list(None),
            await orders.find({"_id": {"$in": ids}}, {"n": 1, "_id": 0}).to_list(None),
            await orders.find({"_id": {"$in": ids}}).skip(1).limit(2).to_list(None),
            await orders.find({"_id": {"$in": ids}}).sort("n", -1).to_list(None),
            await orders.find({"_id": {"$in": [*ids, 7]}}).to_list(None),
            await orders.find({"_id": "o9", "_position": {"$exists": True}}).to_list(None),
            await orders.find({"_id": "o9", "_position": {"$exists": False}}).to_list(None),
            await orders.find({"_id": {"$in": []}}).to_list(None),
            await orders.find({"_id": "O9"}, collation={"locale": "en", "strength": 2}).to_list(
                None
            ),
            await orders.count_documents({"_id": {"$in": ids}}),
        ]
        many = [f"o{n}" for n in range(0, DOCUMENTS, 3)] * 2
        found.append(len(await orders.find({"_id": {"$in": many}}).to_list(None)))
        return found


async def test_finds_by_id_answer_as_mongoecos_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mongo_engines, "KEYS_PER_QUERY", 4)  # reads of several queries too
    ours = await reads(IdLookupSQLiteEngine(str(tmp_path / "ours.sqlite")))
    assert ours == await reads(SQLiteEngine(str(tmp_path / "mongoeco.sqlite")))


async def test_a_find_by_ids_compiles_no_query_over_the_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiling a filter into SQL gives a query that reads every row of the collection (and
    first asks, over every row, which value types its fields hold)."""
    engine = IdLookupSQLiteEngine(str(tmp_path / "mongo.sqlite"))
    async with AsyncMongoClient(engine) as client:
        orders = client["db"]["orders"]
        for n in range(DOCUMENTS):
            await orders.replace_one({"_id": f"o{n}"}, {"n": n}, upsert=True)
        compiled = CompileCount(engine, monkeypatch)
        found = await orders.find({"_id": {"$in": ["o7", "missing", "o3"]}}).to_list(None)
        absent = await orders.find({"_id": {"$in": ["new-1", "new-2"]}}).to_list(None)
        assert compiled.calls == 0
        assert sorted(document["n"] for document in found) == [3, 7]
        assert absent == []
        await orders.find({"n": {"$in": [3, 7]}}).to_list(None)
        assert compiled.calls == 1  # any other filter still goes through SQL


def test_the_sqlite_read_hook_is_still_mongoecos() -> None:
    """The override replaces a private method of mongoeco 4.11's SQLite engine, called with its
    reader: an upgrade that renames either must fail here, not silently scan again."""
    hook = vars(SQLiteEngine)["_open_scan_documents_sync"]
    assert list(inspect.signature(hook).parameters) == ["self", "reader"]
    from mongoeco.engines._sqlite_reader import SQLiteScanReader

    fields = set(inspect.signature(SQLiteScanReader).parameters)
    assert {"db_name", "coll_name", "semantics", "context"} <= fields
