"""Helpers the projections share: typed handler registration, safe map keys and the one way a
projection adds to a stored sum."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from projector.projection import EventEnvelope, Projection
from shared.contract.read_model_sums import stored_sum, sum_of
from shared.contract.versioned_events import Event
from shared.ports.document_store import Document

# Characters a MongoDB field name cannot hold (``.`` splits paths, a leading ``$`` is an
# operator, NUL ends the name) plus ``%``, the escape character itself.
_ESCAPED = frozenset("%.$\x00")


def handle[E: Event](
    projection: Projection,
    event_type: type[E],
    handler: Callable[[E, Document | None, EventEnvelope], Document | None],
) -> None:
    """Register ``handler`` on ``projection`` for ``event_type``, called with the event already
    narrowed to its type (registering a type twice is an error, see ``Projection.on``)."""

    def typed(document: Document | None, envelope: EventEnvelope) -> Document | None:
        event = envelope.event
        if not isinstance(event, event_type):
            raise TypeError(f"{projection.name}: expected {event_type.__name__}, got {event!r}")
        return handler(event, document, envelope)

    projection.on(event_type, typed)


def field_key(text: str) -> str:
    """``text`` as one MongoDB field name: ``%``, ``.``, ``$`` and NUL are percent-encoded
    (``"a.b"`` -> ``"a%2Eb"``), so user data (SKUs, currency codes) can key a map. Codes such
    as ``"EUR"`` are unchanged."""
    return "".join(f"%{ord(char):02X}" if char in _ESCAPED else char for char in text)


def added(counters: Mapping[str, Any], key: str, amount: int) -> dict[str, Any]:
    """A copy of ``counters`` with ``amount`` added to ``key`` (missing counts as 0).

    Every sum a projection keeps goes through here, so it is stored by the read-model rule
    (``shared/contract/read_model_sums.py``): an int within int64, its exact decimal string
    beyond (money summed across orders can pass 2^63-1, which MongoDB cannot store as an
    integer); either form is read back as the int it stands for."""
    return {**counters, key: stored_sum(sum_of(counters.get(key, 0)) + amount)}
