"""Where read models live in MongoDB: the layout the projector writes and the read side reads.

- Each projection version has its own collection ``<name>_v<version>`` (never renamed; a rebuild
  writes a new version and the registry switches to it atomically).
- ``projection_registry``: one document per projection, ``{_id: name, active_version, ...}``.
  The read side resolves a projection's collection through it.
- ``projection_checkpoints``: one document per projection version,
  ``{_id: "<name>_v<version>", projection, version, position, updated_at, last_event_at, state,
  error}``; ``position`` is the global position of the last event applied (or scanned).
- ``dead_letters``: events an operator parked so a failed projection could resume.
- Every read document carries ``_position``: the position of the last event applied to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.ports.document_store import DocumentStore

REGISTRY = "projection_registry"
CHECKPOINTS = "projection_checkpoints"
DEAD_LETTERS = "dead_letters"
POSITION_FIELD = "_position"

ORDER_VIEWS = "order_views"
CUSTOMER_SUMMARIES = "customer_summaries"
DAILY_SALES = "daily_sales"
PROJECTION_NAMES: tuple[str, ...] = (ORDER_VIEWS, CUSTOMER_SUMMARIES, DAILY_SALES)


def collection_name(projection: str, version: int) -> str:
    return f"{projection}_v{version}"


@dataclass(frozen=True, slots=True)
class ActiveReadModel:
    """The version of a projection that queries should read, and how far it has got."""

    projection: str
    version: int
    collection: str
    position: int


async def resolve_active(store: DocumentStore, projection: str) -> ActiveReadModel:
    """The active version of ``projection`` (version 1 before the projector first ran)."""
    entry = await store.find_one(REGISTRY, {"_id": projection})
    version = int(entry["active_version"]) if entry else 1
    collection = collection_name(projection, version)
    checkpoint = await store.find_one(CHECKPOINTS, {"_id": collection})
    position = int(checkpoint["position"]) if checkpoint else 0
    return ActiveReadModel(projection, version, collection, position)
