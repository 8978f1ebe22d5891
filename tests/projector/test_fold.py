"""The fold (``projector.fold``): a batch's events into a version's documents, in memory, with no
store at all. Given documents as read and a batch, then the changes, the checkpoint it may reach
and the event it fails on."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.fold import HANDLER_ATTEMPTS, Decoder, Fold, fold
from projector.projection import EventEnvelope, Projection
from shared.contract.order_events import ItemAdded, build_order_event_registry
from shared.contract.versioned_events import EventMetadata, EventRegistry
from shared.ports.document_store import Document
from shared.ports.event_store import RecordedEvent

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


class Units(Projection):
    """Units added per SKU; a SKU named "BAD" makes the handler raise."""

    name = "units"

    def __init__(self) -> None:
        super().__init__()
        self.on(ItemAdded, self._added)

    def document_id(self, envelope: EventEnvelope) -> str | None:
        assert isinstance(envelope.event, ItemAdded)
        return envelope.event.sku

    def _added(self, document: Document | None, envelope: EventEnvelope) -> Document | None:
        event = envelope.event
        assert isinstance(event, ItemAdded)
        if event.sku == "BAD":
            raise ValueError("cannot count BAD")
        return {"units": (document or {}).get("units", 0) + event.quantity}


def added(position: int, sku: str, quantity: int = 1) -> RecordedEvent:
    event = ItemAdded(order_id=uuid.uuid4(), sku=sku, quantity=quantity, unit_price=100)
    return RecordedEvent(
        event_id=uuid.uuid4(),
        stream=f"order-{event.order_id}",
        revision=0,
        position=position,
        type=event.event_type,
        data=EventRegistry.serialize(event),
        metadata=EventMetadata().to_json(),
        recorded_at=T0 + timedelta(seconds=position),
    )


def folded(
    batch: Batch,
    documents: dict[str, Document],
    *,
    position: int = 0,
    parked: frozenset[uuid.UUID] = frozenset(),
) -> Fold:
    target = Target(Units(), 1, position=position)
    decoder = Decoder(build_order_event_registry())
    return fold(batch, target, documents, decoder=decoder, parked=parked, now=NOW)


def test_events_fold_in_log_order_into_one_change_per_document() -> None:
    # Given a document as read at position 5, and a batch adding to it twice and to a new one
    documents = {"A": {"_id": "A", "units": 1, "_position": 5}}
    as_read = copy.deepcopy(documents)
    batch = Batch([added(10, "A", 2), added(20, "B"), added(30, "A", 3)])
    # When it is folded
    result = folded(batch, documents)
    # Then each document changes once, from the position it was read with, to its last state
    final = {c.document_id: (c.base, c.document) for c in result.final_changes()}
    assert final == {
        "A": (as_read["A"], {"_id": "A", "units": 6, "_position": 30}),
        "B": (None, {"_id": "B", "units": 1, "_position": 20}),
    }
    assert [c.document["units"] for c in result.event_changes() if c is not None] == [3, 1, 6]
    assert (result.position, result.last_event_at, result.failure) == (
        30,
        T0 + timedelta(seconds=30),
        None,
    )
    assert documents == as_read  # the documents it was given are left as they were


def test_a_redelivered_event_changes_nothing_but_the_checkpoint_passes_it() -> None:
    # Given a document already past position 20 (a write that landed before a crash)
    documents = {"A": {"_id": "A", "units": 5, "_position": 20}}
    # When the batch is delivered again, with a server checkpoint beyond it
    batch = Batch([added(10, "A"), added(20, "A")], checkpoint=40)
    result = folded(batch, documents)
    # Then no document changes, and the checkpoint may move to the server's
    assert result.final_changes() == []
    assert [a.change for a in result.applied] == [None, None]
    assert result.position == 40


def test_events_at_or_below_the_version_checkpoint_are_left_out() -> None:
    result = folded(Batch([added(10, "A"), added(20, "A"), added(30, "A")]), {}, position=20)
    assert [a.event.position for a in result.applied] == [30]


def test_a_failing_handler_stops_the_version_before_its_event() -> None:
    # Given a batch whose second event the handler cannot take
    batch = Batch([added(10, "A"), added(20, "BAD"), added(30, "A")], checkpoint=99)
    # When it is folded
    result = folded(batch, {}, position=3)
    # Then the first event is kept, the version fails on the second, the third is not taken
    assert [a.event.position for a in result.applied] == [10]
    assert result.failure is not None and result.failure.event_id == batch.events[1].event_id
    assert (result.failure.attempts, result.failure.failed_at) == (HANDLER_ATTEMPTS, NOW)
    assert "cannot count BAD" in result.failure.error
    assert (result.position, result.last_event_at) == (10, T0 + timedelta(seconds=10))


def test_a_failure_on_the_first_event_keeps_the_version_where_it_was() -> None:
    result = folded(Batch([added(10, "BAD")]), {}, position=3)
    assert (result.applied, result.position, result.last_event_at) == ((), 3, None)
    assert result.failure is not None


def test_a_parked_event_that_still_fails_is_skipped_and_reported() -> None:
    batch = Batch([added(10, "A"), added(20, "BAD"), added(30, "A")])
    result = folded(batch, {}, parked=frozenset({batch.events[1].event_id}))
    assert result.failure is None and result.position == 30
    assert [a.event.position for a in result.applied] == [10, 30]
    [(event, error)] = result.skipped
    assert event is batch.events[1] and "cannot count BAD" in error
