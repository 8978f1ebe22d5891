"""The read-model layout (``shared.contract.read_models``): its documents read back as written,
older or odd documents read sensibly, and no module but the contract (and the projector's two
repositories, which write through its types) names the registry or checkpoint collections or
a registry field."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.contract.read_models import (
    CheckpointDocument,
    FailedEvent,
    RegistryEntry,
    RegistryFields,
    collection_name,
    failed_on,
    parse_collection_name,
)

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = "shared/contract/read_models.py"
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
FAILURE = FailedEvent(
    event_id=uuid.uuid4(),
    stream="order-1",
    revision=2,
    position=77,
    event_type="ItemAdded",
    error="ValueError: boom",
    attempts=3,
    failed_at=NOW,
)


@pytest.mark.parametrize(
    "entry",
    [
        RegistryEntry("order_views"),
        RegistryEntry(
            "daily_sales",
            active_version=3,
            rebuilding_version=4,
            rebuild_owner="host:12:ab",
            rebuild_heartbeat_at=NOW,
            retired_version=2,
            switched_at=NOW,
        ),
    ],
)
def test_a_registry_entry_reads_back_as_written(entry: RegistryEntry) -> None:
    assert RegistryEntry.from_document(entry.to_document()) == entry


def test_a_registry_document_with_naive_dates_and_no_version_reads_sensibly() -> None:
    naive = NOW.replace(tzinfo=None)  # as BSON dates come back from a client that is not tz-aware
    entry = RegistryEntry.from_document({"_id": "x", "rebuild_heartbeat_at": naive})
    assert entry == RegistryEntry("x", active_version=1, rebuild_heartbeat_at=NOW)
    assert entry.active_collection == "x_v1"


@pytest.mark.parametrize(
    "checkpoint",
    [
        CheckpointDocument("order_views", 2),
        CheckpointDocument("order_views", 2, 1234, "live", NOW, NOW),
        CheckpointDocument("customer_summaries", 1, 50, "failing", reason="refused"),
        CheckpointDocument("daily_sales", 7, 76, "failed", NOW, NOW, failure=FAILURE),
    ],
)
def test_a_checkpoint_reads_back_as_written(checkpoint: CheckpointDocument) -> None:
    document = checkpoint.to_document()
    assert document["_id"] == collection_name(checkpoint.projection, checkpoint.version)
    assert CheckpointDocument.from_document(document) == checkpoint


def test_a_checkpoint_without_projection_and_version_is_named_by_its_id() -> None:
    read = CheckpointDocument.from_document({"_id": "order_views_v12", "position": 5})
    assert (read.projection, read.version, read.position) == ("order_views", 12, 5)
    assert read.state is None and read.failure is None


def test_a_checkpoint_update_sets_everything_but_the_parked_count_unless_parking() -> None:
    checkpoint = CheckpointDocument("order_views", 2, 9, "catching_up")
    plain, parked = checkpoint.update(), checkpoint.update(parked=True)
    assert plain == {"$set": {k: v for k, v in checkpoint.to_document().items() if k != "_id"}}
    assert parked == {**plain, "$inc": {"parked_events": 1}}
    assert failed_on(checkpoint.id, FAILURE.event_id) == {
        "_id": "order_views_v2",
        "error.event_id": str(FAILURE.event_id),
    }


def test_collection_names_parse_back() -> None:
    assert parse_collection_name(collection_name("order_views", 12)) == ("order_views", 12)
    assert parse_collection_name("a_v1_v2") == ("a_v1", 2)
    for other in ("order_views", "dead_letters", "x_v", "x_vone"):
        assert parse_collection_name(other) is None


# Who may name what: the contract itself, and the one projector repository of each document.
ALLOWED = {
    "REGISTRY": {CONTRACT, "projector/version_registry.py"},
    "CHECKPOINTS": {CONTRACT, "projector/checkpoint_store.py"},
}
SCANNED = ("projector", "read_side", "orders_api", "write_side", "shared")


def layout_names(source: str) -> set[str]:
    """The layout names ``source`` uses: collection constants, and registry fields as strings."""
    fields = set(RegistryFields.__annotations__)
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found |= {alias.name for alias in node.names if alias.name in ALLOWED}
        elif isinstance(node, ast.Attribute) and node.attr in ALLOWED:
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and node.value in fields:
            found.add("registry field")
    return found


def test_only_the_contract_and_the_repositories_name_the_layout() -> None:
    misplaced = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for name in layout_names(path.read_text(encoding="utf-8")):
                if where not in ALLOWED.get(name, {CONTRACT}):
                    misplaced.append(f"{where}: {name}")
    assert misplaced == []


def test_the_layout_scan_sees_imports_attributes_and_field_keys() -> None:
    source = (
        "from shared.contract.read_models import CHECKPOINTS\n"
        "import shared.contract.read_models as m\nm.REGISTRY\n"
        "x = doc['active_version']\n"
    )
    assert layout_names(source) == {"CHECKPOINTS", "REGISTRY", "registry field"}
