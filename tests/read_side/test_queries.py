"""Query validation and the opaque pagination cursor: pure, no I/O."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from read_side.pagination import PageCursor, decode_cursor, encode_cursor
from read_side.queries import GetDailySales, GetOrder, ListCustomerOrders


def test_cursor_round_trips_and_is_urlsafe() -> None:
    cursor = PageCursor(datetime(2025, 3, 1, 12, 30, 5, 123000, tzinfo=UTC), "b" * 36)
    text = encode_cursor(cursor)
    assert decode_cursor(text) == cursor
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_cursor_normalises_naive_and_other_zones_to_utc() -> None:
    naive = datetime(2025, 3, 1, 12, 0)
    other = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert decode_cursor(encode_cursor(PageCursor(naive, "x"))).created_at == naive.replace(
        tzinfo=UTC
    )
    assert decode_cursor(encode_cursor(PageCursor(other, "x"))).created_at == naive.replace(
        tzinfo=UTC
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64 at all!",
        "a" * 1000,
        _b64(b"\xff\xfe"),
        _b64(b"{}"),
        _b64(b"[1, 2, 3]"),
        _b64(b'[2, "2025-03-01T12:00:00+00:00", "x"]'),
        _b64(b'[1, "2025-03-01T12:00:00", "x"]'),
        _b64(b'[1, "yesterday", "x"]'),
        _b64(b'[1, "2025-03-01T12:00:00+00:00", ""]'),
        _b64(b'[1, "2025-03-01T12:00:00+00:00"]'),
    ],
)
def test_malformed_cursors_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="malformed cursor"):
        decode_cursor(text)
    with pytest.raises(ValidationError, match="malformed cursor"):
        ListCustomerOrders(customer_id="c", cursor=text)


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_page_size_is_bounded(limit: int) -> None:
    with pytest.raises(ValidationError):
        ListCustomerOrders(customer_id="c", limit=limit)


def test_list_defaults() -> None:
    query = ListCustomerOrders(customer_id="c")
    assert (query.limit, query.status, query.cursor, query.min_position, query.wait_ms) == (
        20,
        None,
        None,
        None,
        2000,
    )


@pytest.mark.parametrize("wait_ms", [-1, 10_001])
def test_wait_is_bounded(wait_ms: int) -> None:
    with pytest.raises(ValidationError):
        GetOrder(order_id="0b6f1c1e-0000-4000-8000-000000000000", wait_ms=wait_ms)


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ListCustomerOrders(customer_id="c", status="lost")


def test_daily_sales_range_rules() -> None:
    GetDailySales(from_day=date(2024, 1, 1), to_day=date(2024, 12, 31))  # 366 days: leap year
    GetDailySales(from_day=date(2025, 1, 1), to_day=date(2025, 1, 1))
    with pytest.raises(ValidationError, match="after"):
        GetDailySales(from_day=date(2025, 1, 2), to_day=date(2025, 1, 1))
    with pytest.raises(ValidationError, match="367 days"):
        GetDailySales(from_day=date(2024, 1, 1), to_day=date(2025, 1, 1))
