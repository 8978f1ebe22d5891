"""Keyset pagination over a customer's orders: newest first by (created_at desc, order id desc).

The cursor is the sort key of the last order on a page, as urlsafe base64 of a small JSON
array. It is opaque to clients (only its round trip is promised) and carries a version so the
format can change without breaking cursors handed out before. Keyset rather than offset
pagination: a page costs the same however deep it is, and orders created while a client pages
through appear on no page twice and shift no page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_FORMAT = 1
_MAX_CURSOR_LENGTH = 512


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the previous page stopped: the sort key of its last order."""

    created_at: datetime
    order_id: str


def as_utc(moment: datetime) -> datetime:
    """MongoDB stores UTC without a zone; a naive datetime read back is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def encode_cursor(cursor: PageCursor) -> str:
    payload = [_FORMAT, as_utc(cursor.created_at).isoformat(), cursor.order_id]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> PageCursor:
    """The cursor ``encode_cursor`` made; ValueError for anything else."""
    if not text or len(text) > _MAX_CURSOR_LENGTH:
        raise ValueError("malformed cursor: pass the next_cursor of the previous page unchanged")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload: Any = json.loads(raw)
        version, created_at, order_id = payload
        if version != _FORMAT or not isinstance(created_at, str) or not isinstance(order_id, str):
            raise ValueError("unknown cursor layout")
        moment = datetime.fromisoformat(created_at)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ValueError(
            "malformed cursor: pass the next_cursor of the previous page unchanged"
        ) from error
    if moment.tzinfo is None or not order_id:
        raise ValueError("malformed cursor: pass the next_cursor of the previous page unchanged")
    return PageCursor(moment.astimezone(UTC), order_id)


def after_cursor(cursor: PageCursor, *, sort_field: str, id_field: str = "_id") -> dict[str, Any]:
    """The filter for orders strictly after ``cursor`` in (sort_field desc, id desc) order.

    Written as an ``$or`` of two range conditions on the index's own fields, so the query
    planner serves it from the (customer_id, [status,] created_at desc, _id desc) index.
    """
    return {
        "$or": [
            {sort_field: {"$lt": cursor.created_at}},
            {sort_field: cursor.created_at, id_field: {"$lt": cursor.order_id}},
        ]
    }
