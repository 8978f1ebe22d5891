"""Writing only what changed (``projector.document_diff``): the update from a document to its next
state, checked in memory and then against the real document store, where applying it to the
stored document must leave exactly the next state, as a replacement would."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.document_diff import MAX_FIELDS, same, update_between
from shared.contract.order_events import build_order_event_registry
from shared.contract.read_models import CHECKPOINTS
from shared.ports.document_store import (
    Document,
    DocumentStore,
    ReplaceOne,
    UpdateOne,
    WriteOp,
    WriteResult,
)
from tests.projector.test_fold import Units, added

T = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DAY: dict[str, Any] = {
    "_id": "2026-12-06",
    "orders_placed": 3,
    "revenue": {"EUR": 500, "USD": 70},
    "skus": {
        "EUR:A": {"sku": "A", "units": 1, "revenue": 100},
        "EUR:B": {"sku": "B", "units": 2, "revenue": 400},
    },
    "updated_at": T,
    "_position": 10,
}

# (what the next state changes, the update expected)
CASES: list[tuple[dict[str, Any], dict[str, dict[str, Any]]]] = [
    ({}, {"$set": {"_position": 20}}),
    ({"orders_placed": 4}, {"$set": {"orders_placed": 4, "_position": 20}}),
    (
        {"skus": {**DAY["skus"], "EUR:B": {"sku": "B", "units": 3, "revenue": 600}}},
        {"$set": {"skus.EUR:B.units": 3, "skus.EUR:B.revenue": 600, "_position": 20}},
    ),
    (
        {"skus": {**DAY["skus"], "EUR%2EC": {"sku": "C", "units": 1, "revenue": 50}}},
        {"$set": {"skus.EUR%2EC": {"sku": "C", "units": 1, "revenue": 50}, "_position": 20}},
    ),
    ({"revenue": {"EUR": 500}}, {"$set": {"_position": 20}, "$unset": {"revenue.USD": ""}}),
    ({"revenue": {}}, {"$set": {"revenue": {}, "_position": 20}}),
    ({"orders_placed": 3.0}, {"$set": {"orders_placed": 3.0, "_position": 20}}),
    ({"orders_placed": "3"}, {"$set": {"orders_placed": "3", "_position": 20}}),
    ({"tags": ["a", "b"]}, {"$set": {"tags": ["a", "b"], "_position": 20}}),
    ({"revenue": 0}, {"$set": {"revenue": 0, "_position": 20}}),
    (
        {"other_skus": {"EUR": {"units": 1}}},
        {"$set": {"other_skus": {"EUR": {"units": 1}}, "_position": 20}},
    ),
]


def next_state(changes: dict[str, Any]) -> dict[str, Any]:
    return {**DAY, **changes, "_position": 20}


@pytest.mark.parametrize(("changes", "expected"), CASES)
def test_the_update_sets_what_changed_and_unsets_what_is_gone(
    changes: dict[str, Any], expected: dict[str, dict[str, Any]]
) -> None:
    assert update_between(DAY, next_state(changes)) == expected


def test_a_field_gone_from_the_top_level_is_unset_and_the_id_never_set() -> None:
    after = {key: value for key, value in next_state({}).items() if key != "updated_at"}
    assert update_between(DAY, after) == {
        "$set": {"_position": 20},
        "$unset": {"updated_at": ""},
    }


def test_names_no_dotted_path_can_hold_are_written_with_their_parent() -> None:
    before = {"_id": "x", "map": {"a.b": 1, "c": 1}, "_position": 1}
    after = {"_id": "x", "map": {"a.b": 2, "c": 1}, "_position": 2}
    assert update_between(before, after) == {"$set": {"map": after["map"], "_position": 2}}
    before["map"] = {"$x": 1}
    after["map"] = {"$x": 2}
    assert update_between(before, after)["$set"]["map"] == {"$x": 2}


def many_skus(units: int) -> dict[str, Any]:
    return {f"EUR:S{i}": {"sku": f"S{i}", "units": units} for i in range(MAX_FIELDS + 12)}


def test_more_changed_fields_than_one_update_may_name_are_written_with_their_top_level_field() -> (
    None
):
    before = {**DAY, "skus": many_skus(1)}
    after = next_state({"skus": many_skus(2)})
    assert update_between(before, after) == {"$set": {"skus": after["skus"], "_position": 20}}
    # More changed top-level fields than that: no update, the document is replaced whole.
    wide = {f"f{i}": i for i in range(MAX_FIELDS + 1)}
    assert update_between(DAY, next_state(wide)) is None


async def test_an_update_of_many_nested_fields_applies_on_the_real_store(
    document_store: DocumentStore,
) -> None:
    before, after = next_state({"skus": many_skus(1)}), next_state({"skus": many_skus(2)})
    after["_position"] = 30
    await document_store.bulk_write("days", [ReplaceOne({"_id": DAY["_id"]}, before, upsert=True)])
    update = update_between(before, after)
    assert update is not None
    condition = {"_id": DAY["_id"], "_position": 20}
    assert (await document_store.bulk_write("days", [UpdateOne(condition, update)])).changed == 1
    assert await document_store.find_one("days", {"_id": DAY["_id"]}) == after


def test_values_are_the_same_only_with_the_same_types_all_the_way_down() -> None:
    assert same({"a": [1, {"b": T}]}, {"a": [1, {"b": T}]})
    assert not same(1, True)
    assert not same(1, 1.0)
    assert not same([1], [1.0])
    assert not same({"a": 1}, {"a": 1, "b": 2})
    assert not same({"a": {"b": 1}}, {"a": {"b": 1.0}})


@pytest.mark.parametrize(("changes", "expected"), CASES)
async def test_applied_to_the_stored_document_it_leaves_exactly_the_next_state(
    document_store: DocumentStore, changes: dict[str, Any], expected: dict[str, dict[str, Any]]
) -> None:
    await document_store.bulk_write("days", [ReplaceOne({"_id": DAY["_id"]}, DAY, upsert=True)])
    after = next_state(changes)
    condition = {"_id": DAY["_id"], "_position": DAY["_position"]}
    written = await document_store.bulk_write(
        "days", [UpdateOne(condition, update_between(DAY, after))]
    )
    assert written.changed == 1
    stored = await document_store.find_one("days", {"_id": DAY["_id"]})
    assert stored == after


class RecordingStore:
    """Holds one document of the units projection; records every write."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.writes: list[tuple[str, list[WriteOp]]] = []

    async def find_by_ids(self, collection: str, ids: Sequence[str]) -> list[Document]:
        return [self.document] if self.document["_id"] in ids else []

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        self.writes.append((collection, list(ops)))
        return WriteResult(changed=len(ops))


async def test_the_projector_writes_an_existing_document_as_what_changed_since_it_was_read() -> (
    None
):
    # Given a document as stored at position 5, with a field the next event leaves alone
    stored = {"_id": "A", "units": 1, "note": "kept", "_position": 5}
    store = RecordingStore(stored)
    writer = Dispatcher(store, build_order_event_registry(), lambda: T)  # type: ignore[arg-type]
    # When a batch adds to it and creates another document
    target = Target(Units(), 1, position=5)
    [plan] = await writer.apply(Batch([added(10, "A", 2), added(20, "B")]), [target], {})
    # Then the existing one is a compare-and-set of its changes, the new one an insert
    assert plan.trouble is None
    [(collection, ops)] = [write for write in store.writes if write[0] != CHECKPOINTS]
    assert collection == "units_v1"
    by_id = {op.filter["_id"]: op for op in ops}
    assert by_id["A"] == UpdateOne(
        {"_id": "A", "_position": 5},
        {"$set": {"units": 3, "_position": 10}, "$unset": {"note": ""}},
    )
    assert isinstance(by_id["B"], ReplaceOne) and by_id["B"].upsert
