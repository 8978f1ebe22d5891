"""The read models the projector builds, one ``Projection`` subclass per module."""

from __future__ import annotations

from projector.projection import Projection
from projector.projections.customer_summaries import CustomerSummaries
from projector.projections.daily_sales import DailySales
from projector.projections.order_views import OrderViews

_PROJECTIONS: tuple[type[Projection], ...] = (OrderViews, CustomerSummaries, DailySales)


class UnknownProjection(LookupError):
    """A projection name that is not one of ``known``."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown projection {name!r}; known projections: {', '.join(known)}")


def all_projections() -> tuple[Projection, ...]:
    """A fresh instance of every projection, in ``read_models.PROJECTION_NAMES`` order."""
    return tuple(projection() for projection in _PROJECTIONS)


def projection_by_name(name: str) -> Projection:
    """A fresh instance of the projection called ``name``; ``UnknownProjection`` otherwise."""
    for projection in _PROJECTIONS:
        if projection.name == name:
            return projection()
    raise UnknownProjection(name, tuple(projection.name for projection in _PROJECTIONS))


__all__ = [
    "CustomerSummaries",
    "DailySales",
    "OrderViews",
    "UnknownProjection",
    "all_projections",
    "projection_by_name",
]
