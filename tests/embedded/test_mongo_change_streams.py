"""embedded-mongo's SQLite engine keeps no change-stream outbox and delivers change streams from
its client's hub, with the same answers and the same changes as mongoeco's own engine
(``embedded/mongo_change_streams.py``)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import mongoeco.engines.sqlite as sqlite_engine
from mongoeco import AsyncMongoClient
from mongoeco.engines import SQLiteEngine, _sqlite_outbox

from embedded.mongo_change_streams import HubDeliverySQLiteEngine
from tests.embedded.test_mongo_engines import answers

BIG = {f"sku-{n:04d}": {"units": n, "revenue": 100 * n} for n in range(200)}


class Spied:
    """Counts, per engine, the outbox rows it encodes and its change dispatches."""

    outbox_rows: int
    dispatches: int

    def _serialize_document(self, document: Any) -> str:
        if isinstance(document, dict) and "full_document" in document:
            self.outbox_rows += 1
        encoded: str = super()._serialize_document(document)  # type: ignore[misc]
        return encoded

    def dispatch_committed_changes(self, *args: Any, **kwargs: Any) -> None:
        self.dispatches += 1
        super().dispatch_committed_changes(*args, **kwargs)  # type: ignore[misc]


class SpiedOurs(Spied, HubDeliverySQLiteEngine):
    outbox_rows = dispatches = 0


class SpiedMongoeco(Spied, SQLiteEngine):
    outbox_rows = dispatches = 0


async def writes(engine: Any) -> dict[str, Any] | None:
    """Writes nobody watches, then the document they leave."""
    async with AsyncMongoClient(engine) as client:
        days = client["db"]["daily_sales"]
        await days.insert_one({"_id": "2026-12-06", "skus": BIG, "_position": 1})
        await days.update_one(
            {"_id": "2026-12-06", "_position": 1},
            {"$set": {"skus.sku-0001.units": 7, "_position": 2}},
        )
        await days.replace_one({"_id": "2026-12-07"}, {"skus": {}}, upsert=True)
        await days.delete_one({"_id": "2026-12-07"})
        found: dict[str, Any] | None = await days.find_one({"_id": "2026-12-06"})
        return found


async def watched(engine: Any) -> list[dict[str, Any]]:
    """What a change stream opened before the writes sees of them."""
    seen = []
    async with AsyncMongoClient(engine) as client:
        orders = client["db"]["orders"]
        await orders.insert_one({"_id": "before"})
        stream = orders.watch(max_await_time_ms=5_000, full_document="updateLookup")
        await orders.insert_one({"_id": "o1", "lines": BIG})
        await orders.update_one({"_id": "o1"}, {"$set": {"status": "placed"}})
        await orders.replace_one({"_id": "o1"}, {"status": "paid"})
        await orders.delete_one({"_id": "o1"})
        for _ in range(4):
            change = await stream.next()
            seen.append(
                {
                    key: change.get(key)
                    for key in ("operationType", "documentKey", "fullDocument", "ns")
                }
            )
        stream.close()
    return seen


async def test_writes_leave_no_outbox_rows_and_dispatch_nothing(tmp_path: Path) -> None:
    ours, mongoeco = SpiedOurs(str(tmp_path / "ours.db")), SpiedMongoeco(str(tmp_path / "m.db"))
    stored = await writes(ours)
    assert stored == await writes(mongoeco)
    assert stored is not None
    assert stored["skus"]["sku-0001"] == {"units": 7, "revenue": 100}
    assert (ours.outbox_rows, ours.dispatches) == (0, 0)
    # mongoeco's engine, in the same process, still keeps its outbox and delivers from it.
    assert mongoeco.outbox_rows == 4
    assert mongoeco.dispatches >= 4


async def test_a_change_stream_sees_what_it_sees_on_mongoecos_engine(tmp_path: Path) -> None:
    ours = await watched(HubDeliverySQLiteEngine(str(tmp_path / "ours.db")))
    assert ours == await watched(SQLiteEngine(str(tmp_path / "m.db")))
    assert [c["operationType"] for c in ours] == ["insert", "update", "replace", "delete"]
    assert ours[0]["fullDocument"] == {"_id": "o1", "lines": BIG}


async def test_answers_as_mongoecos_engine_does(tmp_path: Path) -> None:
    ours = await answers(HubDeliverySQLiteEngine(str(tmp_path / "ours.sqlite")))
    assert ours == await answers(SQLiteEngine(str(tmp_path / "mongoeco.sqlite")))


def test_the_outbox_hook_is_still_mongoecos() -> None:
    """mongoeco 4.11.0's SQLite engine appends through this name, passing its own encoder."""
    hook = sqlite_engine._sqlite_append_change
    assert getattr(hook, "__wrapped__", hook) is _sqlite_outbox.append_change
    assert "serialize_document" in inspect.signature(_sqlite_outbox.append_change).parameters
    source = inspect.getsource(sqlite_engine.SQLiteEngine._update_with_operation_sync)
    assert "serialize_document=self._serialize_document" in source
    assert SQLiteEngine.capabilities.transactional_outbox
    assert not HubDeliverySQLiteEngine.capabilities.transactional_outbox
