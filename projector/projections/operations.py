"""How projections write: idempotent operations conditional on ``_position``, and safe map keys.

Every operation targets one document by ``_id`` and matches only while the document's
``_position`` is lower than the event's global position; it sets ``_position`` to that
position. A re-delivered event therefore matches nothing and changes nothing. When the
operation is an upsert and the document already exists past that position, MongoDB reports a
duplicate ``_id``; the document store treats that as "already applied".

A projection emits at most one operation per document per event: a second operation on the
same document for the same event would be skipped by the first one's ``_position``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from projector.projection import EventEnvelope, Projection
from shared.document_store import UpdateOne, WriteOp
from shared.events import Event
from shared.read_models import POSITION_FIELD

# Characters a MongoDB field name cannot hold (``.`` splits paths, a leading ``$`` is an
# operator, NUL ends the name) plus ``%``, the escape character itself.
_ESCAPED = frozenset("%.$\x00")


def handle[E: Event](
    projection: Projection,
    event_type: type[E],
    handler: Callable[[E, EventEnvelope], Sequence[WriteOp]],
) -> None:
    """Register ``handler`` on ``projection`` for ``event_type``, called with the event already
    narrowed to its type (registering a type twice is an error, see ``Projection.on``)."""

    def typed(envelope: EventEnvelope) -> Sequence[WriteOp]:
        event = envelope.event
        if not isinstance(event, event_type):
            raise TypeError(f"{projection.name}: expected {event_type.__name__}, got {event!r}")
        return handler(event, envelope)

    projection.on(event_type, typed)


def field_key(text: str) -> str:
    """``text`` as one MongoDB field name: ``%``, ``.``, ``$`` and NUL are percent-encoded
    (``"a.b"`` -> ``"a%2Eb"``), so user data (SKUs, currency codes) can key a map. Codes such
    as ``"EUR"`` are unchanged."""
    return "".join(f"%{ord(char):02X}" if char in _ESCAPED else char for char in text)


def position_filter(document_id: str, envelope: EventEnvelope) -> dict[str, Any]:
    return {"_id": document_id, POSITION_FIELD: {"$lt": envelope.position}}


def conditional_update(
    document_id: str,
    envelope: EventEnvelope,
    update: Mapping[str, Mapping[str, Any]],
    *,
    upsert: bool,
) -> UpdateOne:
    """An operator update (``$set``, ``$inc``, ...) applied only if the document is behind
    ``envelope``; it also sets ``_position``."""
    body = {operator: dict(fields) for operator, fields in update.items() if fields}
    body["$set"] = {**body.get("$set", {}), POSITION_FIELD: envelope.position}
    return UpdateOne(position_filter(document_id, envelope), body, upsert=upsert)


def conditional_pipeline(
    document_id: str,
    envelope: EventEnvelope,
    stages: Sequence[Mapping[str, Any]],
    *,
    upsert: bool,
) -> UpdateOne:
    """An aggregation-pipeline update (for changes computed from the document itself), applied
    only if the document is behind ``envelope``; a last stage sets ``_position``. Values from
    events must be wrapped in ``literal`` inside the stages: a string starting with ``$`` would
    otherwise be read as a field path."""
    final = {"$set": {POSITION_FIELD: literal(envelope.position)}}
    return UpdateOne(position_filter(document_id, envelope), [*stages, final], upsert=upsert)


def literal(value: Any) -> dict[str, Any]:
    """A constant inside an aggregation expression."""
    return {"$literal": value}


def insert_defaults(
    defaults: Mapping[str, Any], update: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``$setOnInsert`` fields that give a new document every field of its shape, leaving out
    those the update already writes (MongoDB rejects two operators on overlapping paths)."""
    written = [path for fields in update.values() for path in fields]
    return {
        path: value
        for path, value in defaults.items()
        if not any(_overlaps(path, other) for other in written)
    }


def _overlaps(first: str, second: str) -> bool:
    return first == second or first.startswith(f"{second}.") or second.startswith(f"{first}.")
