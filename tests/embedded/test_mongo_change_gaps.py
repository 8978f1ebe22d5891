"""embedded-mongo's SQLite engine records a change-stream gap without encoding the written
document, and still hands a watching stream the whole change (``embedded/mongo_change_gaps.py``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import mongoeco.engines.sqlite as sqlite_engine
import pytest
from mongoeco import AsyncMongoClient
from mongoeco.engines import _sqlite_outbox

from embedded.mongo_change_gaps import record_gaps_without_documents
from embedded.mongo_engines import IdLookupSQLiteEngine

BIG = {f"sku-{n:04d}": {"units": n, "revenue": 100 * n} for n in range(200)}


class SpiedEngine(IdLookupSQLiteEngine):
    """Records every outbox row's document that the engine encodes."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.outbox_documents: list[Any] = []

    def _serialize_document(self, document: Any) -> str:
        if isinstance(document, dict) and "full_document" in document:
            self.outbox_documents.append(document["full_document"])
        encoded: str = super()._serialize_document(document)
        return encoded


@pytest.fixture
def original_append_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from mongoeco's own hook, and leaves it as it found it."""
    monkeypatch.setattr(
        sqlite_engine, "_sqlite_append_change", _sqlite_outbox.append_change, raising=True
    )


async def write_unwatched(engine: SpiedEngine) -> dict[str, Any] | None:
    async with AsyncMongoClient(engine) as client:
        days = client["db"]["daily_sales"]
        await days.insert_one({"_id": "2026-12-06", "skus": BIG, "_position": 1})
        await days.update_one(
            {"_id": "2026-12-06", "_position": 1},
            {"$set": {"skus.sku-0001.units": 7, "_position": 2}},
        )
        found: dict[str, Any] | None = await days.find_one({"_id": "2026-12-06"})
        return found


@pytest.mark.usefixtures("original_append_change")
async def test_mongoeco_alone_encodes_the_document_of_every_gap(tmp_path: Path) -> None:
    engine = SpiedEngine(str(tmp_path / "m.db"))
    await write_unwatched(engine)
    assert [d["_id"] for d in engine.outbox_documents] == ["2026-12-06", "2026-12-06"]


@pytest.mark.usefixtures("original_append_change")
async def test_a_gap_is_recorded_without_its_document(tmp_path: Path) -> None:
    record_gaps_without_documents()
    record_gaps_without_documents()  # a second call changes nothing
    engine = SpiedEngine(str(tmp_path / "m.db"))
    stored = await write_unwatched(engine)
    assert engine.outbox_documents == [None, None]
    assert stored is not None
    assert stored["skus"]["sku-0001"] == {"units": 7, "revenue": 100}
    assert stored["_position"] == 2


@pytest.mark.usefixtures("original_append_change")
async def test_a_watching_stream_still_gets_the_whole_change(tmp_path: Path) -> None:
    record_gaps_without_documents()
    engine = SpiedEngine(str(tmp_path / "m.db"))
    async with AsyncMongoClient(engine) as client:
        days = client["db"]["daily_sales"]
        stream = days.watch(max_await_time_ms=5_000)
        await days.insert_one({"_id": "2026-12-06", "skus": BIG})
        change = await stream.next()
        stream.close()
    assert change["operationType"] == "insert"
    assert change["fullDocument"]["skus"] == BIG
    assert [d["_id"] for d in engine.outbox_documents] == ["2026-12-06"]


def test_the_outbox_hook_is_still_mongoecos() -> None:
    """mongoeco 4.11.0's SQLite engine appends through this name, with these keywords."""
    hook = sqlite_engine._sqlite_append_change
    assert getattr(hook, "__wrapped__", hook) is _sqlite_outbox.append_change
    parameters = inspect.signature(_sqlite_outbox.append_change).parameters
    assert {"context", "full_document", "serialize_document"} <= set(parameters)
    source = inspect.getsource(sqlite_engine.SQLiteEngine._update_with_operation_sync)
    assert "_sqlite_append_change(" in source
