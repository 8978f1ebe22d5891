"""The query API: one route per query, each a thin translation of HTTP into a query.

Every answer carries ``X-Read-Model-Position`` (the commit position the read model had
applied); a request with ``X-Consistency-Token`` also gets ``X-Read-Model-Stale`` (``true`` when
the read model did not reach the token within ``wait_ms``: lag makes an answer stale, never an
error). One order is fresh as soon as its own document has applied the token, which it does
before the read model's position moves past it: that answer is ``false`` with a position that
may still be short of the token. An unknown customer has an all-zero summary rather than a
404: the read side knows customers only through their orders, so "no orders yet" is a valid
answer, not a missing one.

A read that would have to wait while READ_WAIT_MAX_WAITERS reads wait already is refused at
once (503 with Retry-After), and a waiting read is given up as soon as its client leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Path, Response
from fastapi import Query as QueryParam
from pydantic import ValidationError

from read_side.consistency import TooManyWaiters
from read_side.deps import Consistency, QueryBus, ReadConsistency
from read_side.http_docs import (
    DAILY_SALES_EXAMPLE,
    ORDER_EXAMPLE,
    ORDER_PROBLEMS,
    PAGE_EXAMPLE,
    PAGE_PROBLEMS,
    QUERY_PROBLEMS,
    SUMMARY_EXAMPLE,
    read_responses,
)
from read_side.http_problems import CLIENT_CLOSED_REQUEST, MALFORMED_CURSOR, TOO_MANY_WAITING_READS
from read_side.pagination import decode_cursor
from read_side.queries import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_REPORT_DAYS,
    GetCustomerSummary,
    GetDailySales,
    GetOrder,
    ListCustomerOrders,
    ReadModelQuery,
)
from read_side.views import Answer, CustomerSummaryView, DailySalesReport, OrderPage, OrderView
from shared.contract.order_events import OrderStatus
from shared.web.problem_catalogue import ORDER_NOT_FOUND, VALIDATION_FAILED
from shared.web.problem_details import ProblemError

router = APIRouter(tags=["queries"])

OrderId = Annotated[UUID, Path(description="the order's id")]
CustomerId = Annotated[str, Path(min_length=1, max_length=100, description="the customer's id")]


def _headers(answer: Answer[Any], consistency: Consistency) -> dict[str, str]:
    headers = {"X-Read-Model-Position": str(answer.position)}
    if consistency.min_position is not None:
        headers["X-Read-Model-Stale"] = "true" if answer.stale else "false"
    return headers


# Query fields whose HTTP parameter has another name.
_PARAMETERS = {"from_day": "from", "to_day": "to"}


def _validation_problem(error: ValidationError) -> ProblemError:
    """The rules the parameters' own validation cannot see (e.g. from <= to) as a 422."""
    fields = [
        {
            "field": ".".join(["query", *(_PARAMETERS.get(str(p), str(p)) for p in e["loc"])]),
            "message": str(e["msg"]).removeprefix("Value error, "),
            "type": e["type"],
        }
        for e in error.errors()
    ]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return ProblemError(VALIDATION_FAILED, detail, errors=fields)


async def _ask(
    bus: QueryBus,
    response: Response,
    consistency: Consistency,
    query_type: type[ReadModelQuery],
    **fields: Any,
) -> Answer[Any]:
    try:
        query = query_type(
            min_position=consistency.min_position, wait_ms=consistency.wait_ms, **fields
        )
    except ValidationError as error:
        raise _validation_problem(error) from None
    try:
        if consistency.min_position is None or consistency.wait_ms == 0:
            answer = cast(Answer[Any], await bus.dispatch(query))
        else:
            answer = await _unless_the_client_leaves(bus.dispatch(query), consistency)
    except TooManyWaiters as error:
        raise _wait_refused_problem(error) from None
    response.headers.update(_headers(answer, consistency))
    return answer


def _wait_refused_problem(error: TooManyWaiters) -> ProblemError:
    return ProblemError(
        TOO_MANY_WAITING_READS,
        f"{error.max_waiters} reads are already waiting for their consistency token; "
        "retry later, or read without X-Consistency-Token",
        headers={"Retry-After": str(error.retry_after_s)},
    )


async def _unless_the_client_leaves(
    dispatched: Awaitable[object], consistency: Consistency
) -> Answer[Any]:
    """The answer of a query that may wait for its token, given up once the client leaves: a
    gone client must not hold one of the READ_WAIT_MAX_WAITERS places until ``wait_ms``."""
    work = asyncio.ensure_future(dispatched)
    left = asyncio.ensure_future(consistency.client_left())
    try:
        await asyncio.wait((work, left), return_when=asyncio.FIRST_COMPLETED)
    finally:
        work.cancel()  # both no-ops once done
        left.cancel()
        await asyncio.gather(work, left, return_exceptions=True)
    if work.cancelled():
        # Nobody reads this answer (uvicorn drops it); 499 says why in metrics and tests.
        raise ProblemError(CLIENT_CLOSED_REQUEST, "the client left while the read waited")
    return cast(Answer[Any], work.result())


@router.get(
    "/orders/{order_id}",
    response_model=OrderView,
    responses=read_responses(ORDER_EXAMPLE, ORDER_PROBLEMS),
)
async def get_order(
    order_id: OrderId, bus: QueryBus, consistency: ReadConsistency, response: Response
) -> OrderView:
    """One order as a client shows it: items, totals, payment, shipping and status."""
    answer: Answer[OrderView | None] = await _ask(
        bus, response, consistency, GetOrder, order_id=order_id
    )
    if answer.value is None:
        hint = " (the read model has not caught up with your token yet)" if answer.stale else ""
        raise ProblemError(
            ORDER_NOT_FOUND,
            f"no order {order_id}{hint}",
            headers=_headers(answer, consistency),
        )
    return answer.value


@router.get(
    "/customers/{customer_id}/orders",
    response_model=OrderPage,
    responses=read_responses(PAGE_EXAMPLE, PAGE_PROBLEMS),
)
async def list_customer_orders(
    customer_id: CustomerId,
    *,
    bus: QueryBus,
    consistency: ReadConsistency,
    response: Response,
    status: Annotated[
        OrderStatus | None, QueryParam(description="only orders in this status")
    ] = None,
    limit: Annotated[
        int, QueryParam(ge=1, le=MAX_PAGE_SIZE, description="orders per page")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, QueryParam(description="the next_cursor of the previous page")
    ] = None,
) -> OrderPage:
    """A customer's orders, newest first, a page at a time (keyset pagination)."""
    if cursor is not None:
        try:
            decode_cursor(cursor)
        except ValueError as error:
            raise ProblemError(MALFORMED_CURSOR, str(error)) from None
    answer: Answer[OrderPage] = await _ask(
        bus,
        response,
        consistency,
        ListCustomerOrders,
        customer_id=customer_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return answer.value


@router.get(
    "/customers/{customer_id}/summary",
    response_model=CustomerSummaryView,
    responses=read_responses(SUMMARY_EXAMPLE, QUERY_PROBLEMS),
)
async def get_customer_summary(
    customer_id: CustomerId, bus: QueryBus, consistency: ReadConsistency, response: Response
) -> CustomerSummaryView:
    """A customer's orders by status and lifetime payments (all zeros for no orders)."""
    answer: Answer[CustomerSummaryView] = await _ask(
        bus, response, consistency, GetCustomerSummary, customer_id=customer_id
    )
    return answer.value


@router.get(
    "/reports/daily-sales",
    response_model=DailySalesReport,
    responses=read_responses(DAILY_SALES_EXAMPLE, QUERY_PROBLEMS),
)
async def get_daily_sales(
    from_day: Annotated[date, QueryParam(alias="from", description="first UTC day, YYYY-MM-DD")],
    to_day: Annotated[
        date,
        QueryParam(
            alias="to",
            description=f"last UTC day (included); at most {MAX_REPORT_DAYS} days after from",
        ),
    ],
    bus: QueryBus,
    consistency: ReadConsistency,
    response: Response,
) -> DailySalesReport:
    """Orders placed, revenue received and units per SKU, per UTC day, with totals."""
    answer: Answer[DailySalesReport] = await _ask(
        bus, response, consistency, GetDailySales, from_day=from_day, to_day=to_day
    )
    return answer.value
