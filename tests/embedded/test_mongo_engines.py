"""embedded-mongo's engines: lookups by string ``_id`` answer as mongoeco's do, without going
through every document of the collection (``embedded/mongo_engines.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mongoeco import AsyncMongoClient
from mongoeco.engines import MemoryEngine, SQLiteEngine
from pymongo.errors import DuplicateKeyError

from embedded import mongo
from embedded.mongo_change_streams import HubDeliverySQLiteEngine
from embedded.mongo_engines import IdLookupMemoryEngine, IdLookupSQLiteEngine
from tests.embedded.compiles import CompileCount

DOCUMENTS = 300


async def answers(engine: Any) -> list[Any]:
    """What a collection answers to filters on ``_id``, reads and writes mixed."""
    async with AsyncMongoClient(engine) as client:
        return await answers_of(client["db"]["orders"])


async def answers_of(orders: Any) -> list[Any]:
    for n in range(50):
        await orders.update_one({"_id": f"o{n}"}, {"$setOnInsert": {"n": n}}, upsert=True)
    await orders.insert_one({"_id": 7, "n": "an int id"})
    found: list[Any] = []
    queries: tuple[dict[str, Any], ...] = (
        {"_id": {"$in": ["o9", "o3", "missing", "o3", "o40"]}},
        {"_id": {"$in": []}},
        {"_id": "o5", "n": 5},
        {"_id": "o5", "n": 6},
        {"_id": "missing"},
        {"_id": 7.0},
        {"_id": {"$in": [7.0, "o1"]}},
        {"$and": [{"_id": {"$in": ["o1", "o2"]}}, {"n": {"$gt": 1}}]},
    )
    for query in queries:
        found.append(await orders.find(query).to_list(None))
    found.append(
        await orders.find({"_id": "O5"}, collation={"locale": "en", "strength": 2}).to_list(None)
    )
    replaced = await orders.replace_one({"_id": "o6", "n": 6}, {"n": 66})
    found.append((replaced.matched_count, replaced.modified_count))
    with pytest.raises(DuplicateKeyError):
        await orders.update_one({"_id": "o6", "n": 5}, {"$set": {"x": 1}}, upsert=True)
    inserted = await orders.update_one({"_id": "new"}, {"$setOnInsert": {"n": -1}}, upsert=True)
    found.append((inserted.matched_count, inserted.upserted_id))
    found.append((await orders.delete_one({"_id": "missing"})).deleted_count)
    found.append((await orders.delete_one({"_id": "o0"})).deleted_count)
    found.append(await orders.find({"_id": {"$in": ["o0", "o1", "new"]}}).to_list(None))
    found.append(await orders.count_documents({"_id": {"$in": ["o1", "o2", "missing"]}}))
    found.append(await orders.find({}, {"_id": 1}).to_list(None))
    return found


async def test_lookups_by_id_answer_as_mongoeco_does() -> None:
    assert await answers(IdLookupMemoryEngine()) == await answers(MemoryEngine())


async def test_lookups_by_id_on_sqlite_answer_as_mongoeco_does(tmp_path: Path) -> None:
    ours = await answers(IdLookupSQLiteEngine(str(tmp_path / "ours.sqlite")))
    assert ours == await answers(SQLiteEngine(str(tmp_path / "mongoeco.sqlite")))


def counting_borrows(
    engine: IdLookupMemoryEngine, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], int]:
    """Count the stored documents the engine looks at (to match them against a filter)."""
    borrow = engine._borrow_storage_document
    seen = 0

    def counted(data: object, **options: Any) -> Any:
        nonlocal seen
        seen += 1
        return borrow(data, **options)

    monkeypatch.setattr(engine, "_borrow_storage_document", counted)
    return lambda: seen


async def filled(engine: IdLookupMemoryEngine) -> Any:
    orders = AsyncMongoClient(engine)["db"]["orders"]
    for n in range(DOCUMENTS):
        await orders.update_one({"_id": f"o{n}"}, {"$setOnInsert": {"n": n}}, upsert=True)
    return orders


async def test_an_upsert_of_a_new_id_looks_at_no_other_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = IdLookupMemoryEngine()
    orders = await filled(engine)
    seen = counting_borrows(engine, monkeypatch)
    await orders.update_one({"_id": "new"}, {"$setOnInsert": {"n": -1}}, upsert=True)
    await orders.replace_one({"_id": "other", "_position": 3}, {"n": 1}, upsert=True)
    assert seen() == 0
    assert await orders.count_documents({}) == DOCUMENTS + 2


async def test_a_read_by_ids_looks_only_at_those_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = IdLookupMemoryEngine()
    orders = await filled(engine)
    seen = counting_borrows(engine, monkeypatch)
    found = await orders.find({"_id": {"$in": ["o7", "missing", "o3"]}}).to_list(None)
    assert [document["_id"] for document in found] == ["o3", "o7"]
    assert seen() == 2


async def test_an_upsert_of_a_new_id_on_sqlite_compiles_no_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiling a filter into SQL first reads the whole collection (cached until the next
    write): an upsert of a new id, or a conditional write by id, must not need it."""
    engine = IdLookupSQLiteEngine(str(tmp_path / "mongo.sqlite"))
    async with AsyncMongoClient(engine) as client:
        await upsert_and_count(engine, client["db"]["orders"], monkeypatch)


async def upsert_and_count(
    engine: IdLookupSQLiteEngine, orders: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await orders.update_one({"_id": "first"}, {"$setOnInsert": {"n": 0}}, upsert=True)
    compiled = CompileCount(engine, monkeypatch)
    await orders.update_one({"_id": "new"}, {"$setOnInsert": {"n": 1}}, upsert=True)
    await orders.replace_one({"_id": "first", "_position": None}, {"n": 2, "_position": 5})
    await orders.update_one({"_id": "first", "_position": {"$lt": 5}}, {"$set": {"n": 3}})
    await orders.delete_one({"_id": "missing"})
    assert compiled.calls == 0
    assert await orders.find({}, {"_id": 0}).to_list(None) == [{"n": 2, "_position": 5}, {"n": 1}]


def test_the_engine_hooks_are_still_mongoecos() -> None:
    """The override replaces a private method of mongoeco 4.11's memory engine: an upgrade that
    renames it or changes how it is called must fail here, not silently scan again."""
    hook = vars(MemoryEngine)["_candidate_items_for_plan_locked"]
    parameters = list(inspect.signature(hook).parameters)
    assert parameters[:3] == ["self", "coll", "query_plan"]
    assert {"collation", "natural_order_limit"} <= set(parameters)
    sqlite_hook = vars(SQLiteEngine)["_select_first_document_for_plan"]
    sqlite_parameters = list(inspect.signature(sqlite_hook).parameters)
    assert sqlite_parameters == ["self", "db_name", "coll_name", "plan", "hint", "context"]


def test_embedded_mongo_runs_the_engines_with_id_lookups(tmp_path: Path) -> None:
    assert type(mongo.build_engine(mongo.parse_args(["--memory"]))) is IdLookupMemoryEngine
    on_disk = mongo.build_engine(mongo.parse_args(["--db", str(tmp_path / "mongo.sqlite")]))
    assert type(on_disk) is HubDeliverySQLiteEngine
    assert isinstance(on_disk, IdLookupSQLiteEngine)
