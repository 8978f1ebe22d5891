"""Looking projections up by name, and the event types the projector subscribes to."""

from __future__ import annotations

from collections.abc import Sequence

from projector.projection import Projection
from projector.projections import UnknownProjection
from shared.contract.order_events import ORDER_EVENT_TYPES


def pick(projections: Sequence[Projection], name: str) -> Projection:
    """The projection called ``name`` among ``projections``; UnknownProjection lists the rest."""
    for projection in projections:
        if projection.name == name:
            return projection
    raise UnknownProjection(name, tuple(p.name for p in projections))


def subscription_event_types(projections: Sequence[Projection]) -> tuple[str, ...]:
    """This service's event types (plus any a projection handles): the server-side filter.

    The daemon and every rebuild use the same filter, so that the checkpoint positions they
    reach (which also advance on the server's filter checkpoints) can be compared.
    """
    extra = sorted({t for p in projections for t in p.event_types} - set(ORDER_EVENT_TYPES))
    return (*ORDER_EVENT_TYPES, *extra)
