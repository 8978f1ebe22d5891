"""The read side's queries: the questions a client may ask the read models.

Every query may carry a consistency requirement: ``min_position`` is the commit position a
command returned (its consistency token); the handler then waits up to ``wait_ms`` for the read
model behind the query to reach it, and answers with what it has either way (flagged stale when
it did not get there). Without ``min_position`` a query answers at once.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Self
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from read_side.pagination import decode_cursor
from shared.contract.order_events import OrderStatus
from shared.messaging.messages import Query

DEFAULT_WAIT_MS = 2000
MAX_WAIT_MS = 10_000
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_REPORT_DAYS = 366

CustomerId = Annotated[str, Field(min_length=1, max_length=100)]


class ReadModelQuery(Query):
    """Base of every query: the optional read-your-writes requirement."""

    min_position: int | None = Field(default=None, ge=0)
    wait_ms: int = Field(default=DEFAULT_WAIT_MS, ge=0, le=MAX_WAIT_MS)


class GetOrder(ReadModelQuery):
    order_id: UUID


class ListCustomerOrders(ReadModelQuery):
    """One page of a customer's orders, newest first; ``cursor`` is the previous page's
    ``next_cursor`` (opaque)."""

    customer_id: CustomerId
    status: OrderStatus | None = None
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = None

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, cursor: str | None) -> str | None:
        if cursor is not None:
            decode_cursor(cursor)  # raises ValueError naming the problem
        return cursor


class GetCustomerSummary(ReadModelQuery):
    customer_id: CustomerId


class GetDailySales(ReadModelQuery):
    """Sales per UTC day from ``from_day`` to ``to_day``, both included."""

    from_day: date
    to_day: date

    @model_validator(mode="after")
    def _range_is_bounded(self) -> Self:
        if self.from_day > self.to_day:
            raise ValueError(f"from ({self.from_day}) is after to ({self.to_day})")
        days = (self.to_day - self.from_day).days + 1
        if days > MAX_REPORT_DAYS:
            raise ValueError(f"the range spans {days} days; at most {MAX_REPORT_DAYS} are allowed")
        return self
