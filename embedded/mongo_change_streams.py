"""embedded-mongo's SQLite engine: change streams from the client's hub, and no outbox.

mongoeco's SQLite engine delivers change streams through a transactional outbox, built for
several processes sharing one database file: every committed write appends a row to an outbox
table, and then, on every write, the client takes a consumer lease in SQLite, starts a heartbeat
thread, reads the new rows, hands them to its change-stream hub, moves its checkpoint and gives
the lease back. While no stream watches (nothing in this project opens one) each row is a *gap*,
for which the engine still encodes the whole written document, only to hash it.

embedded-mongo is one process serving one database file, so its client's in-process hub is all
change streams need; that is how mongoeco delivers them for an engine that declares no
sequenced delivery. ``HubDeliverySQLiteEngine`` declares none, and so keeps no outbox: watching
streams still get every insert, update, replace and delete with its documents, from the hub.
Measured in-process (mongoeco 4.11.0, 40 updates each): a ``$set`` of five fields in a 108 KiB
``daily_sales`` document (1,000 SKUs) took 64 ms of CPU, 32 ms without encoding the gap's
document, and a ``$set`` of one field in a small document 1.29 ms against 0.91 ms without the
outbox's delivery. In soaks at 100 commands/s offered, with reads waiting 250 ms for their
token, 89 commands/s were delivered and 62 % of those reads were stale without encoding the
gaps' documents, against 94 commands/s and 22 % without the outbox (single runs, one after the
other).

The engine appends its outbox rows through a module-level name of mongoeco's SQLite engine
(``_sqlite_append_change``), not a method; ``skip_outbox_without_outbox_delivery`` wraps it once
per process so that an engine whose capabilities declare no outbox delivery appends nothing
(mongoeco requires a commit sequence only from an engine that declares sequenced delivery).
Every other engine, such as a plain ``SQLiteEngine`` in the same process, appends as before.
Written against mongoeco 4.11.0 (pinned in ``pyproject.toml``);
``tests/embedded/test_mongo_change_streams.py`` checks that the hook is still there.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import mongoeco.engines.sqlite as sqlite_engine

from embedded.mongo_engines import IdLookupSQLiteEngine

_HOOK = "_sqlite_append_change"  # how mongoeco's SQLite engine module names append_change
_MARK = "_skips_outbox_without_outbox_delivery"


def _delivers_through_outbox(serialize_document: Any) -> bool:
    """Whether the engine appending (the owner of its ``serialize_document``) delivers change
    streams through its outbox; an unknown caller is taken to."""
    engine = getattr(serialize_document, "__self__", None)
    capabilities = getattr(engine, "capabilities", None)
    return capabilities is None or bool(capabilities.transactional_outbox)


def skip_outbox_without_outbox_delivery() -> None:
    """Make engines that declare no outbox delivery append no outbox rows (once per process)."""
    append_change = getattr(sqlite_engine, _HOOK)
    if getattr(append_change, _MARK, False):
        return

    @functools.wraps(append_change)
    def append_if_delivered(conn: Any, *, serialize_document: Any, **fields: Any) -> Any:
        if not _delivers_through_outbox(serialize_document):
            return None
        return append_change(conn, serialize_document=serialize_document, **fields)

    setattr(append_if_delivered, _MARK, True)
    setattr(sqlite_engine, _HOOK, append_if_delivered)


class HubDeliverySQLiteEngine(IdLookupSQLiteEngine):
    """The engine embedded-mongo serves: lookups by ``_id`` (``embedded.mongo_engines``), change
    streams delivered by the client's hub, no outbox."""

    capabilities = replace(IdLookupSQLiteEngine.capabilities, change_delivery="none")

    def __init__(self, path: str) -> None:
        skip_outbox_without_outbox_delivery()
        super().__init__(path)
