"""The update that turns a read-model document into its next state: ``$set`` of what changed and
``$unset`` of what is gone, down to nested fields.

The projector writes a document it has read (or kept) as a compare-and-set on the ``_position``
it was folded from, so the stored document is exactly the one folded from whenever the write
matches; setting only what differs then leaves exactly the new state, as a replacement would.
It costs far less where a batch changes a little of a large document: the day's ``daily_sales``
at its 1,000-SKU cap is 108 KiB, of which a batch changes a few entries; the embedded MongoDB
server spends half the CPU on such a ``$set`` that it spends on a replacement, and a replica
set's oplog records a few hundred bytes instead of the whole document.

Values are compared strictly (a type change counts: ``1``, ``1.0`` and ``True`` differ), so a
difference is never missed; setting an unchanged value is harmless. A nested field whose name
cannot be part of a dotted path (empty, or holding ``.``, ``$`` at its start or NUL; the
projections escape user data with ``field_key``, so this is a safety net) is written with its
whole parent instead. An update that would name more than ``MAX_FIELDS`` fields names the
changed top-level fields whole, or is not made at all (the document is then replaced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.ports.document_store import Document

# Fields one update may name. The embedded MongoDB server turns a ``$set`` into one SQLite
# ``json_set`` call with two arguments per field and refuses more than 127 arguments (63 fields);
# beyond a few dozen fields a replacement costs no more anyway.
MAX_FIELDS = 48
_MISSING = object()  # a field the document before did not have


def update_between(before: Document, after: Document) -> dict[str, dict[str, Any]] | None:
    """The update document that makes ``before`` into ``after`` (``_id`` is never set), naming
    at most ``MAX_FIELDS`` fields: nested ones where that many suffice, else changed top-level
    fields whole; None when even those are more (replace the document instead)."""
    for nested in (True, False):
        sets: dict[str, Any] = {}
        unsets: dict[str, str] = {}
        _differences(before, after, "", sets, unsets, nested=nested)
        sets.pop("_id", None)
        if len(sets) + len(unsets) <= MAX_FIELDS:
            update: dict[str, dict[str, Any]] = {"$set": sets}
            if unsets:
                update["$unset"] = unsets
            return update
    return None


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _differences(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    prefix: str,
    sets: dict[str, Any],
    unsets: dict[str, str],
    *,
    nested: bool,
) -> None:
    if prefix and not all(map(_path_safe, (*before, *after))):
        sets[prefix.removesuffix(".")] = after  # a name no path can hold: the parent whole
        return
    for key, value in after.items():
        old = before.get(key, _MISSING)
        if old is _MISSING or not same(old, value):
            if nested and isinstance(old, Mapping) and isinstance(value, Mapping) and old and value:
                _differences(old, value, f"{prefix}{key}.", sets, unsets, nested=nested)
            else:
                sets[f"{prefix}{key}"] = value
    for key in before:
        if key not in after:
            unsets[f"{prefix}{key}"] = ""


def _path_safe(name: str) -> bool:
    return bool(name) and "." not in name and "\0" not in name and not name.startswith("$")
