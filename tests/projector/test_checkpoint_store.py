"""The checkpoint repository against MongoDB: what is saved reads back the same, a park only
lands while the version still fails on the event the operator saw, and a version's checkpoint
can be found and deleted. No other projector module names the checkpoint collection."""

from __future__ import annotations

import ast
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from projector.checkpoint_store import (
    CheckpointRecord,
    Target,
    checkpointed_versions,
    delete_checkpoint,
    load_checkpoint,
    load_checkpoints,
    save_checkpoints,
    save_parked,
)
from projector.lifecycle import Actor, Trigger, transition
from projector.projections import CustomerSummaries, OrderViews
from shared.contract.read_models import FailedEvent
from shared.ports.document_store import DocumentStore

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def failure(position: int) -> FailedEvent:
    return FailedEvent(
        event_id=uuid.uuid4(),
        stream="order-1",
        revision=2,
        position=position,
        event_type="ItemAdded",
        error="ValueError: boom",
        attempts=3,
        failed_at=NOW,
    )


def parked(record: CheckpointRecord, at: datetime) -> CheckpointRecord:
    """``record`` once an operator parked the event it failed on."""
    assert record.failure is not None
    return replace(
        record,
        position=record.failure.position,
        standing=transition(record.standing, Trigger.PARKED, Actor.OPERATOR),
        updated_at=at,
    )


async def test_saved_progress_reads_back_as_saved(document_store: DocumentStore) -> None:
    live = replace(Target(OrderViews(), 3), position=120, last_event_at=NOW).moved(
        Trigger.CAUGHT_UP
    )
    failing = replace(Target(CustomerSummaries(), 1), position=80).moved(
        Trigger.TROUBLED, reason="DocumentStoreError: refused"
    )
    failed = replace(Target(OrderViews(), 4), position=50).moved(
        Trigger.EVENT_FAILED, failure=failure(51)
    )
    await save_checkpoints(document_store, [live, failing, failed], NOW)

    records = await load_checkpoints(
        document_store, [live.checkpoint_id, failing.checkpoint_id, failed.checkpoint_id, "none"]
    )
    assert set(records) == {live.checkpoint_id, failing.checkpoint_id, failed.checkpoint_id}
    for target in (live, failing, failed):
        record = records[target.checkpoint_id]
        assert (record.position, record.standing) == (target.position, target.standing)
        assert record.updated_at == NOW
    assert records[live.checkpoint_id].last_event_at == NOW
    assert await load_checkpoint(document_store, "order_views_v9") is None


async def test_a_park_lands_only_while_the_version_fails_on_that_event(
    document_store: DocumentStore,
) -> None:
    target = replace(Target(OrderViews(), 1), position=50)
    await save_checkpoints(
        document_store, [target.moved(Trigger.EVENT_FAILED, failure=failure(51))], NOW
    )
    seen = await load_checkpoint(document_store, target.checkpoint_id)
    assert seen is not None and seen.failure is not None

    # Meanwhile the daemon retried the event and failed on it again: another failure record.
    retried = target.moved(Trigger.EVENT_FAILED, failure=failure(51))
    await save_checkpoints(document_store, [retried], NOW + timedelta(seconds=1))
    await save_parked(document_store, seen, parked(seen, NOW))
    unchanged = await load_checkpoint(document_store, target.checkpoint_id)
    assert unchanged is not None and unchanged.failure == retried.failure

    # Parking the event it fails on now resumes it just past that event.
    await save_parked(document_store, unchanged, parked(unchanged, NOW))
    resumed = await load_checkpoint(document_store, target.checkpoint_id)
    assert resumed is not None and resumed.failure is None
    assert (resumed.position, resumed.state) == (51, "catching_up")
    assert resumed.last_event_at == unchanged.last_event_at

    # Parking again (a second operator with the same view) changes nothing.
    await save_parked(document_store, unchanged, parked(unchanged, NOW))
    assert await load_checkpoint(document_store, target.checkpoint_id) == resumed


async def test_versions_with_a_checkpoint_are_found_and_deleted(
    document_store: DocumentStore,
) -> None:
    versions = [Target(OrderViews(), v) for v in (1, 2, 5)]
    await save_checkpoints(document_store, [*versions, Target(CustomerSummaries(), 7)], NOW)
    assert await checkpointed_versions(document_store, "order_views") == {1, 2, 5}
    await delete_checkpoint(document_store, versions[1].checkpoint_id)
    assert await checkpointed_versions(document_store, "order_views") == {1, 5}
    assert await load_checkpoint(document_store, versions[1].checkpoint_id) is None


def names_checkpoint_collection(source: str) -> bool:
    """Whether ``source`` names the contract's CHECKPOINTS (imported, or as an attribute)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and any(a.name == "CHECKPOINTS" for a in node.names):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "CHECKPOINTS":
            return True
    return False


def test_only_the_checkpoint_store_touches_checkpoint_documents() -> None:
    projector = Path(__file__).resolve().parents[2] / "projector"
    touching = [
        path.name
        for path in sorted(projector.rglob("*.py"))
        if names_checkpoint_collection(path.read_text(encoding="utf-8"))
    ]
    assert touching == ["checkpoint_store.py"]
    assert names_checkpoint_collection("import shared.contract.read_models as m\nm.CHECKPOINTS")
