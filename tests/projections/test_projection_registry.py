"""Which projections exist, how handlers register, and which document each event affects."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest

from projector.projection import EventEnvelope, Projection
from projector.projections import (
    CustomerSummaries,
    DailySales,
    OrderViews,
    UnknownProjection,
    all_projections,
    projection_by_name,
)
from projector.projections.operations import handle
from shared.contract.order_events import (
    ORDER_EVENT_TYPES,
    ItemAdded,
    OrderCreated,
    build_order_event_registry,
)
from shared.contract.read_models import PROJECTION_NAMES
from shared.contract.versioned_events import EventMetadata
from tests.projections.history import HOME, History, fold
from tests.projections.scenario import scenario


def test_all_projections_are_the_read_models_in_order() -> None:
    assert tuple(p.name for p in all_projections()) == PROJECTION_NAMES
    assert all_projections()[0] is not all_projections()[0]  # fresh instances


def test_projection_by_name() -> None:
    assert isinstance(projection_by_name("order_views"), OrderViews)
    assert isinstance(projection_by_name("customer_summaries"), CustomerSummaries)
    assert isinstance(projection_by_name("daily_sales"), DailySales)


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownProjection) as raised:
        projection_by_name("order_view")
    assert raised.value.known == PROJECTION_NAMES
    assert str(raised.value) == (
        "unknown projection 'order_view'; known projections: "
        "order_views, customer_summaries, daily_sales"
    )


def test_event_types_each_projection_handles() -> None:
    assert OrderViews().event_types == frozenset(ORDER_EVENT_TYPES)
    assert CustomerSummaries().event_types == {
        "OrderCreated",
        "OrderPlaced",
        "PaymentReceived",
        "OrderShipped",
        "OrderCancelled",
    }
    assert DailySales().event_types == {"OrderPlaced", "PaymentReceived"}


def test_a_second_handler_for_one_event_type_is_an_error() -> None:
    projection = OrderViews()
    with pytest.raises(ValueError, match="OrderCreated already has a handler"):
        handle(projection, OrderCreated, lambda event, document, envelope: None)


def test_events_without_a_handler_change_nothing() -> None:
    class Probe(Projection):
        name = "probe"

        def document_id(self, envelope: EventEnvelope) -> str | None:
            return "probe"

    projection = Probe()
    handle(projection, ItemAdded, lambda event, document, envelope: {"seen": True})
    event = ItemAdded(order_id=uuid4(), sku="a", quantity=1, unit_price=1)
    assert projection.event_types == {"ItemAdded"}
    created = History().record(
        OrderCreated(order_id=uuid4(), customer_id="c", currency="EUR", shipping_address=HOME)
    )
    assert fold(projection, [created]) == {}
    assert fold(projection, [History().record(event)]) == {
        "probe": {"_id": "probe", "seen": True, "_position": 137}
    }
    assert fold(DailySales(), [History().record(event)]) == {}


@pytest.mark.parametrize("projection", all_projections(), ids=lambda p: p.name)
def test_every_event_changes_at_most_the_one_document_it_names(projection: Projection) -> None:
    documents: dict[str, Any] = {}
    for envelope in scenario().history.envelopes:
        changed = fold(projection, [envelope], documents)
        assert set(changed) <= {projection.document_id(envelope)}
        for document_id, document in changed.items():
            assert document["_id"] == document_id
            assert document["_position"] == envelope.position
        documents.update(changed)


def test_a_v1_order_created_projects_the_upcast_address() -> None:
    registry = build_order_event_registry()
    order_id = uuid4()
    raw_v1 = json.dumps(
        {
            "order_id": str(order_id),
            "customer_id": "c-1",
            "currency": "EUR",
            "shipping_address": "Kerkstraat 1, bus 2, 1000 Brussel, BE",
        }
    ).encode()
    metadata = EventMetadata(schema_version=1)
    event = registry.deserialize("OrderCreated", raw_v1, metadata)
    recorded = History().record(event)
    envelope = EventEnvelope(
        event=event,
        metadata=metadata,
        event_id=recorded.event_id,
        stream=recorded.stream,
        revision=0,
        position=recorded.position,
        recorded_at=recorded.recorded_at,
    )
    [view] = fold(OrderViews(), [envelope]).values()
    assert view["shipping_address"] == {
        "line1": "Kerkstraat 1",
        "line2": "bus 2",
        "city": "Brussel",
        "postal_code": "1000",
        "country": "BE",
    }
    # No occurred_at in v1 metadata: the server's record time stands in.
    assert view["created_at"] == recorded.recorded_at
    assert set(fold(CustomerSummaries(), [envelope])) == {"c-1"}
