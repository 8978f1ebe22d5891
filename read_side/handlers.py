"""Query handlers: plain functions from a query (and the read models) to a response model.

They read MongoDB only, through the ``DocumentStore`` port, from the collection of the
projection's active version, and answer with the position that version had reached (and
whether that missed the query's consistency token) besides the response itself.
"""

from __future__ import annotations

from read_side.consistency import ReadModels
from read_side.pagination import PageCursor, after_cursor, decode_cursor, encode_cursor
from read_side.queries import GetCustomerSummary, GetDailySales, GetOrder, ListCustomerOrders
from read_side.views import (
    Answer,
    CustomerSummaryView,
    DailySalesReport,
    OrderPage,
    OrderView,
)
from shared.contract.read_models import CUSTOMER_SUMMARIES, DAILY_SALES, ORDER_VIEWS

CREATED_AT = "created_at"


async def get_order(query: GetOrder, *, read_models: ReadModels) -> Answer[OrderView | None]:
    """The order's view, or None when the read model has no such order. With a consistency
    token, the order's own document may answer before the projection's checkpoint has moved
    (see ``ReadModels.document``)."""
    snapshot, document = await read_models.document(
        ORDER_VIEWS, str(query.order_id), query.min_position, query.wait_ms
    )
    view = OrderView.from_document(document) if document is not None else None
    return Answer(view, snapshot.position, snapshot.stale)


async def list_customer_orders(
    query: ListCustomerOrders, *, read_models: ReadModels
) -> Answer[OrderPage]:
    """One page of the customer's orders, newest first (keyset pagination)."""
    snapshot = await read_models.snapshot(ORDER_VIEWS, query.min_position, query.wait_ms)
    # Equality fields first, then the sort: the shape of the index that serves this query.
    filter_: dict[str, object] = {"customer_id": query.customer_id}
    if query.status is not None:
        filter_["status"] = query.status
    if query.cursor is not None:
        filter_.update(after_cursor(decode_cursor(query.cursor), sort_field=CREATED_AT))
    documents = await read_models.store.find(
        snapshot.collection,
        filter_,
        sort=((CREATED_AT, -1), ("_id", -1)),
        limit=query.limit + 1,  # one more than a page tells whether another page follows
    )
    items = [OrderView.from_document(document) for document in documents[: query.limit]]
    next_cursor = None
    if len(documents) > query.limit:
        last = documents[query.limit - 1]
        next_cursor = encode_cursor(PageCursor(last[CREATED_AT], str(last["_id"])))
    return Answer(
        OrderPage(items=items, next_cursor=next_cursor), snapshot.position, snapshot.stale
    )


async def get_customer_summary(
    query: GetCustomerSummary, *, read_models: ReadModels
) -> Answer[CustomerSummaryView]:
    """The customer's summary; all zeros for a customer with no orders (see ``views``)."""
    snapshot = await read_models.snapshot(CUSTOMER_SUMMARIES, query.min_position, query.wait_ms)
    document = await read_models.store.find_one(snapshot.collection, {"_id": query.customer_id})
    view = (
        CustomerSummaryView.from_document(document)
        if document is not None
        else CustomerSummaryView.empty(query.customer_id)
    )
    return Answer(view, snapshot.position, snapshot.stale)


async def get_daily_sales(
    query: GetDailySales, *, read_models: ReadModels
) -> Answer[DailySalesReport]:
    """Sales per UTC day over the range; days without sales are reported as zeros."""
    snapshot = await read_models.snapshot(DAILY_SALES, query.min_position, query.wait_ms)
    documents = await read_models.store.find(
        snapshot.collection,
        {"_id": {"$gte": query.from_day.isoformat(), "$lte": query.to_day.isoformat()}},
        sort=(("_id", 1),),
    )
    report = DailySalesReport.from_documents(query.from_day, query.to_day, documents)
    return Answer(report, snapshot.position, snapshot.stale)
