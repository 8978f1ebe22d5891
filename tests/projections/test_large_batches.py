"""One batch touching more documents than one query may name (``MAX_BATCH``) and more than
embedded-mongo's ``$in`` can hold (495): the dispatcher reads and writes it in chunks, through
the document-store port, for every projection."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from projector.batching import Batch
from projector.checkpoint_store import Target
from projector.dispatch import Dispatcher
from projector.projections import all_projections
from shared.contract.order_events import (
    OrderCreated,
    OrderLine,
    OrderPlaced,
    build_order_event_registry,
)
from shared.contract.read_models import collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import MAX_BATCH, DocumentStore
from tests.projections.history import HOME, History, fold
from tests.projections.test_projections_on_mongo import recorded

ORDERS = 1_000  # distinct documents in every read model (one customer and one day per order)


def history() -> History:
    h = History()
    for index in range(ORDERS):
        order, customer = uuid4(), f"customer-{index}"
        day = h.clock + timedelta(days=1)
        h.record(
            OrderCreated(
                order_id=order, customer_id=customer, currency="EUR", shipping_address=HOME
            ),
            at=day,
        )
        line = OrderLine(sku="sku", quantity=2, unit_price=150)
        h.record(
            OrderPlaced(
                order_id=order, customer_id=customer, currency="EUR", lines=(line,), total=300
            ),
            at=day,
        )
    return h


@pytest.mark.parametrize("name", sorted(p.name for p in all_projections()))
async def test_one_batch_over_a_thousand_documents(store: DocumentStore, name: str) -> None:
    assert ORDERS >= 1_000 > 495 > MAX_BATCH
    h = history()
    [projection] = [p for p in all_projections() if p.name == name]
    target = Target(projection, 1)
    dispatcher = Dispatcher(store, build_order_event_registry(), utc_now)
    batch = Batch([recorded(e) for e in h.envelopes])

    [plan] = await dispatcher.apply(batch, [target], {})
    assert plan.trouble is None and plan.outcome.failure is None
    assert plan.outcome.position == h.envelopes[-1].position

    expected = fold(projection, h.envelopes)
    stored = await store.find(collection_name(name, 1), {})
    assert len(expected) >= ORDERS
    assert {d["_id"]: d for d in stored} == expected

    # The same batch delivered again (a restart before the checkpoint was saved) reads every
    # document again, in chunks, and changes nothing.
    [again] = await dispatcher.apply(batch, [Target(projection, 1)], {})
    assert again.trouble is None and again.applied and all(a.change is None for a in again.applied)
    assert {d["_id"]: d for d in await store.find(collection_name(name, 1), {})} == expected
