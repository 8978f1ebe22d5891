"""mongoeco's SQLite engine, recording a change-stream gap without encoding the document.

Every write mongoeco's SQLite engine commits also appends a row to its change-stream outbox
(``mongoeco.engines._sqlite_outbox.append_change``). While a change stream watches, the row is an
event and carries the written document. While none does (nothing in this project opens one), the
row is a *gap*: it carries no payload, and only tells a stream resumed later that it missed
changes. Yet the engine still encodes the whole written document for a gap, only to hash it
with the rest of the row (the hash lets a retried operation be told from another one reusing
its id). For a large document this was half of an update's cost: a ``$set`` of five fields in a
108 KiB ``daily_sales`` document (1,000 SKUs) took 65 ms of CPU, and 32 ms without that encoding
(40 updates each, in-process, mongoeco 4.11.0).

``record_gaps_without_documents`` makes the engine append a gap without its document: the row is
the same (kind, namespace, document key; payload none), and its hash covers that row.
mongoeco's memory engine already keeps no document for a gap. Events for a watching stream are
untouched. Written against mongoeco 4.11.0 (pinned in ``pyproject.toml``);
``tests/embedded/test_mongo_change_gaps.py`` checks that the hook is still there.
"""

from __future__ import annotations

import functools
from typing import Any

import mongoeco.engines.sqlite as sqlite_engine
from mongoeco.core.operation_context import ChangePublicationPolicy

_MARK = "_gaps_without_documents"


def _is_gap(context: Any) -> bool:
    return context is not None and context.publication is ChangePublicationPolicy.RECORD_GAP


def record_gaps_without_documents() -> None:
    """Make every SQLite engine of this process append gaps without their document (once)."""
    append_change = sqlite_engine._sqlite_append_change
    if getattr(append_change, _MARK, False):
        return

    @functools.wraps(append_change)
    def append_gap_or_change(conn: Any, *, context: Any, **fields: Any) -> Any:
        if _is_gap(context):
            fields["full_document"] = None
        return append_change(conn, context=context, **fields)

    setattr(append_gap_or_change, _MARK, True)
    sqlite_engine._sqlite_append_change = append_gap_or_change
