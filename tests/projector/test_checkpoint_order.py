"""The order of a batch's checkpoints: those of the versions whose documents the batch changed
are written first (MongoDB applies a bulk write's operations one by one, so reads waiting for
the command that changed them are released sooner)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from projector.projections import DailySales, OrderViews
from shared.contract.order_events import ItemAdded, OrderCreated, order_stream
from shared.contract.read_models import CHECKPOINTS, collection_name
from shared.ports.document_store import DocumentStore, UpdateOne, WriteOp, WriteResult
from shared.ports.event_store import ANY
from tests.fakes.document_store import DelegatingDocumentStore
from tests.fakes.event_store import InMemoryEventStore
from tests.projector.support import ADDRESS, new_event, random_day, running_daemon
from tests.waiting import wait_until


class CheckpointWrites(DelegatingDocumentStore):
    """Records the checkpoint ids of each bulk write of checkpoints, in order."""

    def __init__(self, inner: DocumentStore) -> None:
        super().__init__(inner)
        self.writes: list[list[tuple[str, int]]] = []

    async def bulk_write(self, collection: str, ops: Sequence[WriteOp]) -> WriteResult:
        if collection == CHECKPOINTS:
            self.writes.append(
                [
                    (op.filter["_id"], op.update["$set"]["position"])
                    for op in ops
                    if isinstance(op, UpdateOne)
                    and isinstance(op.update, dict)
                    and "position" in op.update["$set"]  # not a lease's fence stamp
                ]
            )
        return await super().bulk_write(collection, ops)


async def test_the_checkpoints_of_versions_whose_documents_changed_go_first(
    document_store: DocumentStore,
) -> None:
    events = InMemoryEventStore()
    store = CheckpointWrites(document_store)
    order_id, day = uuid.uuid4(), random_day()
    created = OrderCreated(
        order_id=order_id, customer_id="c-1", currency="EUR", shipping_address=ADDRESS
    )
    # Daily sales comes first among the projections, and an item added changes none of its
    # documents: only the order's view.
    async with running_daemon(events, store, [DailySales(), OrderViews()]):
        await events.append(order_stream(order_id), ANY, [new_event(created, day)])
        added = ItemAdded(order_id=order_id, sku="SKU-1", quantity=1, unit_price=100)
        result = await events.append(order_stream(order_id), ANY, [new_event(added, day)])

        async def written() -> list[tuple[str, int]] | None:
            return next((w for w in store.writes if any(p == result.position for _, p in w)), None)

        write = await wait_until(written, "the checkpoints of the item's batch")
    assert write[0] == (collection_name("order_views", 1), result.position)
    assert (collection_name("daily_sales", 1), result.position) in write[1:]
