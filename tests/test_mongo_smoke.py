"""Smoke test: motor straight against embedded-mongo (or MONGO_URI), no project code.

If this fails, the server or the driver is broken, not the adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pymongo
import pytest
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError


@pytest.fixture
async def database(mongo_uri: str, mongo_database_name: str) -> AsyncIterator[Any]:
    client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        yield client[mongo_database_name]
    finally:
        await client.drop_database(mongo_database_name)
        client.close()


async def test_ping(database: AsyncIOMotorDatabase[Any]) -> None:
    assert (await database.command("ping"))["ok"] == 1


async def test_upsert_then_conditional_update(database: AsyncIOMotorDatabase[Any]) -> None:
    orders = database["orders"]
    inserted = await orders.update_one(
        {"_id": "o1", "_position": {"$lt": 5}},
        {"$set": {"status": "draft", "_position": 5}, "$inc": {"n": 1}},
        upsert=True,
    )
    assert inserted.upserted_id == "o1"
    moved = await orders.update_one(
        {"_id": "o1", "_position": {"$lt": 7}}, {"$set": {"status": "placed", "_position": 7}}
    )
    stale = await orders.update_one(
        {"_id": "o1", "_position": {"$lt": 6}}, {"$set": {"status": "stale", "_position": 6}}
    )
    assert (moved.modified_count, stale.matched_count) == (1, 0)
    assert await orders.find_one({"_id": "o1"}) == {
        "_id": "o1",
        "status": "placed",
        "_position": 7,
        "n": 1,
    }
    with pytest.raises(DuplicateKeyError):
        await orders.update_one(
            {"_id": "o1", "_position": {"$lt": 6}}, {"$set": {"_position": 6}}, upsert=True
        )


async def test_ordered_bulk_write_stops_at_a_duplicate_key(
    database: AsyncIOMotorDatabase[Any],
) -> None:
    orders = database["orders"]
    await orders.insert_one({"_id": "a", "_position": 10})
    ops = [
        pymongo.UpdateOne({"_id": "b"}, {"$set": {"x": 1}}, upsert=True),
        pymongo.UpdateOne({"_id": "a", "_position": {"$lt": 3}}, {"$set": {"x": 1}}, upsert=True),
        pymongo.UpdateOne({"_id": "c"}, {"$set": {"x": 1}}, upsert=True),
    ]
    with pytest.raises(BulkWriteError) as raised:
        await orders.bulk_write(ops, ordered=True)
    [error] = raised.value.details["writeErrors"]
    assert (error["index"], error["code"]) == (1, 11000)
    assert await orders.count_documents({}) == 2  # "c" was never attempted
    result = await orders.bulk_write(ops[2:], ordered=True)
    assert result.upserted_count == 1


async def test_bulk_write_find_with_sort_and_limit(database: AsyncIOMotorDatabase[Any]) -> None:
    orders = database["orders"]
    ops = [
        pymongo.ReplaceOne({"_id": f"o{i}"}, {"customer": i % 2, "n": i}, upsert=True)
        for i in range(10)
    ]
    result = await orders.bulk_write(ops, ordered=True)
    assert result.upserted_count == 10
    newest = await orders.find({"customer": 1}, sort=[("n", -1)], limit=3).to_list(None)
    assert [d["n"] for d in newest] == [9, 7, 5]


async def test_create_index(database: AsyncIOMotorDatabase[Any]) -> None:
    orders = database["orders"]
    name = await orders.create_index(
        [("customer", 1), ("created_at", -1), ("_id", -1)], name="customer_newest_first"
    )
    await orders.create_index([("email", 1)], unique=True, name="email_unique")
    indexes = await orders.index_information()
    assert name == "customer_newest_first"
    assert indexes["customer_newest_first"]["key"] == [
        ("customer", 1),
        ("created_at", -1),
        ("_id", -1),
    ]
    assert indexes["email_unique"]["unique"] is True
    await orders.insert_one({"_id": 1, "email": "x"})
    with pytest.raises(DuplicateKeyError):
        await orders.insert_one({"_id": 2, "email": "x"})
