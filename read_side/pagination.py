"""Keyset pagination over a customer's orders: newest first by (created_at desc, order id desc).

The cursor is the sort key of the last order on a page, as urlsafe base64 of a small JSON
array. It is opaque to clients (only its round trip is promised) and carries a version so the
format can change without breaking cursors handed out before. Keyset rather than offset
pagination: a page costs the same however deep it is, and orders created while a client pages
through appear on no page twice and shift no page.
"""

from __future__ import annotations

import base64
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


class MalformedCursor(ValueError):
    """The one error for any text that is not a cursor ``encode_cursor`` made."""

    def __init__(self) -> None:
        super().__init__("malformed cursor: pass the next_cursor of the previous page unchanged")


def decode_cursor(text: str) -> PageCursor:
    """The cursor ``encode_cursor`` made; ``MalformedCursor`` for any other string.

    Total on purpose: a cursor comes from the client, so whatever it holds (bad base64, bytes
    that are not UTF-8, JSON of any shape, dates whose offset pushes them out of range, ids that
    cannot be stored) must end as that one error, never as another exception (a 500).
    """
    if not isinstance(text, str) or not text or len(text) > _MAX_CURSOR_LENGTH:
        raise MalformedCursor()
    try:
        return _parse(text)
    except MalformedCursor:
        raise
    # Every way the standard library can refuse input; anything else would be a bug here.
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        raise MalformedCursor() from error


def _parse(text: str) -> PageCursor:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # binascii.Error: ValueError
    payload: Any = json.loads(raw)  # UnicodeDecodeError and JSONDecodeError: ValueError
    if not isinstance(payload, list) or len(payload) != 3:
        raise MalformedCursor()
    version, created_at, order_id = payload
    # ``type(...) is int``: JSON's true and 1.0 compare equal to 1 but are not our format.
    if type(version) is not int or version != _FORMAT:
        raise MalformedCursor()
    if not isinstance(created_at, str) or not isinstance(order_id, str) or not order_id:
        raise MalformedCursor()
    order_id.encode()  # a lone surrogate cannot be sent to the store (UnicodeEncodeError)
    moment = datetime.fromisoformat(created_at)
    if moment.tzinfo is None:
        raise MalformedCursor()
    return PageCursor(moment.astimezone(UTC), order_id)  # OverflowError near year 1 or 9999


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
