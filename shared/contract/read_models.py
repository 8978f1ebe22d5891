"""Where read models live in MongoDB: the layout the projector writes and the read side reads.

- Each projection version has its own collection ``<name>_v<version>`` (never renamed; a rebuild
  writes a new version and the registry switches to it atomically): ``collection_name`` and its
  inverse ``parse_collection_name``.
- ``projection_registry``: one document per projection (``RegistryEntry``),
  ``{_id: name, active_version, rebuilding_version?, rebuild_owner?, rebuild_heartbeat_at?,
  retired_version?, switched_at?}``. The read side resolves a projection's collection through it.
- ``projection_checkpoints``: one document per projection version (``CheckpointDocument``),
  ``{_id: "<name>_v<version>", projection, version, position, updated_at, last_event_at, state,
  error, parked_events?, fence?}``; ``position`` is the global position of the last event
  applied (or scanned); ``error`` is the event a failed version stopped on (``FailedEvent``), or
  why it is failing or waiting for a store, or null; ``parked_events`` counts events an operator
  parked; ``fence`` is the token of the lease under which the projector instance feeding the version
  saves it (``fenced_by``), stamped at ``fenced_at``: a save under an older token matches nothing.
- ``dead_letters``: events an operator parked so a failed projection could resume.
- Every read document carries ``_position``: the position of the last event applied to it.

These documents are parsed and serialised here and nowhere else (``from_document`` /
``to_document``): the projector, the read side and, through the projector's facade, the API all
hold the typed values. What the states mean is the projector's business
(``projector.lifecycle``); here a state is the string stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.ports.document_store import Document, DocumentStore

REGISTRY = "projection_registry"
CHECKPOINTS = "projection_checkpoints"
DEAD_LETTERS = "dead_letters"
POSITION_FIELD = "_position"
FENCE_FIELD = "fence"
FENCED_AT_FIELD = "fenced_at"

ORDER_VIEWS = "order_views"
CUSTOMER_SUMMARIES = "customer_summaries"
DAILY_SALES = "daily_sales"
PROJECTION_NAMES: tuple[str, ...] = (ORDER_VIEWS, CUSTOMER_SUMMARIES, DAILY_SALES)

_COLLECTION = re.compile(r"^(?P<projection>.+)_v(?P<version>\d+)$")


def collection_name(projection: str, version: int) -> str:
    return f"{projection}_v{version}"


def parse_collection_name(collection: str) -> tuple[str, int] | None:
    """(projection, version) of a version's collection (or checkpoint id); None for any other
    name."""
    match = _COLLECTION.match(collection)
    return (match["projection"], int(match["version"])) if match else None


def as_utc(value: object) -> datetime | None:
    """BSON dates come back naive (UTC) unless the client is tz-aware; normalise both."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RegistryFields(TypedDict, total=False):
    """Fields of a registry document, typed: the projector builds its conditional updates of the
    registry with it, so a misspelt field fails type checking."""

    active_version: int
    rebuilding_version: int | None
    rebuild_owner: str | None
    rebuild_heartbeat_at: datetime | None
    retired_version: int | None
    switched_at: datetime | None


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """Which version of a projection queries read, and which one a rebuild is building (with
    its owner's heartbeat) or retired (and when it switched)."""

    name: str
    active_version: int = 1
    rebuilding_version: int | None = None
    rebuild_owner: str | None = None
    rebuild_heartbeat_at: datetime | None = None
    retired_version: int | None = None
    switched_at: datetime | None = None

    @property
    def active_collection(self) -> str:
        return collection_name(self.name, self.active_version)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RegistryEntry:
        owner = document.get("rebuild_owner")
        return cls(
            name=str(document["_id"]),
            active_version=_optional_int(document.get("active_version")) or 1,
            rebuilding_version=_optional_int(document.get("rebuilding_version")),
            rebuild_owner=owner if isinstance(owner, str) else None,
            rebuild_heartbeat_at=as_utc(document.get("rebuild_heartbeat_at")),
            retired_version=_optional_int(document.get("retired_version")),
            switched_at=as_utc(document.get("switched_at")),
        )

    def to_document(self) -> Document:
        """The whole document (fields that are None left out, as the projector unsets them)."""
        fields = RegistryFields(
            active_version=self.active_version,
            rebuilding_version=self.rebuilding_version,
            rebuild_owner=self.rebuild_owner,
            rebuild_heartbeat_at=self.rebuild_heartbeat_at,
            retired_version=self.retired_version,
            switched_at=self.switched_at,
        )
        return {"_id": self.name, **{k: v for k, v in fields.items() if v is not None}}


class FailedEvent(BaseModel):
    """The event a projection version stopped on, and why (a checkpoint's ``error``)."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    stream: str
    revision: int
    position: int = Field(description="Global position of the event that failed")
    event_type: str
    error: str = Field(description="Exception type and message of the last attempt")
    attempts: int
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class CheckpointDocument:
    """How far one projection version got (``position``), its state as stored, and the event it
    failed on (``failure``) or why it is failing or waiting (``reason``), never both."""

    projection: str
    version: int
    position: int = 0
    state: str | None = None
    last_event_at: datetime | None = None
    updated_at: datetime | None = None
    failure: FailedEvent | None = None
    reason: str | None = None

    @property
    def id(self) -> str:
        return collection_name(self.projection, self.version)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> CheckpointDocument:
        """The checkpoint ``document`` records; projection and version come from its ``_id``
        when the document lacks them."""
        named = parse_collection_name(str(document["_id"])) or (str(document["_id"]), 0)
        projection = document.get("projection")
        error = document.get("error")
        state = document.get("state")
        return cls(
            projection=projection if isinstance(projection, str) else named[0],
            version=_optional_int(document.get("version")) or named[1],
            position=_optional_int(document.get("position")) or 0,
            state=state if isinstance(state, str) else None,
            last_event_at=as_utc(document.get("last_event_at")),
            updated_at=as_utc(document.get("updated_at")),
            failure=FailedEvent.model_validate(error) if isinstance(error, dict) else None,
            reason=error if isinstance(error, str) else None,
        )

    def to_document(self) -> Document:
        """The whole document but ``parked_events`` (a counter of its own, see ``update``)."""
        error: object = self.failure.model_dump(mode="json") if self.failure else self.reason
        return {
            "_id": self.id,
            "projection": self.projection,
            "version": self.version,
            "position": self.position,
            "state": self.state,
            "last_event_at": self.last_event_at,
            "updated_at": self.updated_at,
            "error": error,
        }

    def update(self, *, parked: bool = False) -> dict[str, Any]:
        """The update that makes the stored checkpoint say this (upserting it), leaving its
        ``parked_events`` count alone, or raising it by one when ``parked``."""
        fields = {key: value for key, value in self.to_document().items() if key != "_id"}
        return {"$set": fields, **({"$inc": {"parked_events": 1}} if parked else {})}


def failed_on(checkpoint_id: str, event_id: UUID) -> dict[str, Any]:
    """The filter matching a checkpoint only while its version has failed on ``event_id``."""
    return {"_id": checkpoint_id, "error.event_id": str(event_id)}


def fenced_by(checkpoint_id: str, token: int) -> dict[str, Any]:
    """The filter matching a checkpoint only while ``token`` is the one stamped on it."""
    return {"_id": checkpoint_id, FENCE_FIELD: token}


def fence_at_most(checkpoint_id: str, token: int) -> dict[str, Any]:
    """The filter matching a checkpoint that no token newer than ``token`` has stamped."""
    return {
        "_id": checkpoint_id,
        "$or": [{FENCE_FIELD: {"$exists": False}}, {FENCE_FIELD: {"$lte": token}}],
    }


def unfenced(checkpoint_id: str) -> dict[str, Any]:
    """The filter matching a checkpoint no lease has stamped (a rebuild's version)."""
    return {"_id": checkpoint_id, FENCE_FIELD: {"$exists": False}}


def in_projection(projection: str) -> dict[str, Any]:
    """The filter matching the checkpoints of every version of ``projection``."""
    return {"projection": projection}


async def read_registry(store: DocumentStore, names: Iterable[str]) -> dict[str, RegistryEntry]:
    """The registry entry of each of ``names``; a projection without one (the projector has
    not run yet) is at version 1."""
    wanted = list(names)
    documents = await store.find_by_ids(REGISTRY, wanted) if wanted else []
    found = {entry.name: entry for entry in map(RegistryEntry.from_document, documents)}
    return {name: found.get(name) or RegistryEntry(name) for name in wanted}


async def read_checkpoints(
    store: DocumentStore, ids: Sequence[str]
) -> dict[str, CheckpointDocument]:
    """The checkpoints among ``ids`` (version collection names) that exist, by id."""
    documents = await store.find_by_ids(CHECKPOINTS, list(ids)) if ids else []
    return {str(doc["_id"]): CheckpointDocument.from_document(doc) for doc in documents}


@dataclass(frozen=True, slots=True)
class ActiveReadModel:
    """The version of a projection that queries should read, and how far it has got."""

    projection: str
    version: int
    collection: str
    position: int

    @classmethod
    def of(
        cls, projection: str, version: int, checkpoints: Mapping[str, CheckpointDocument]
    ) -> ActiveReadModel:
        """``version`` of ``projection``, as far as its checkpoint among ``checkpoints`` (by
        collection name) says it has got: position 0 without one."""
        collection = collection_name(projection, version)
        checkpoint = checkpoints.get(collection)
        return cls(projection, version, collection, checkpoint.position if checkpoint else 0)


async def resolve_active(store: DocumentStore, projection: str) -> ActiveReadModel:
    """The active version of ``projection`` (version 1 before the projector first ran)."""
    return (await read_active(store, [projection]))[projection]


async def read_active(store: DocumentStore, names: Iterable[str]) -> dict[str, ActiveReadModel]:
    """The active version of each of ``names`` and how far it has got: two queries however
    many names (their registry entries, then the checkpoints of their active versions)."""
    entries = await read_registry(store, names)
    collections = sorted({entry.active_collection for entry in entries.values()})
    checkpoints = await read_checkpoints(store, collections)
    return {
        name: ActiveReadModel.of(name, entry.active_version, checkpoints)
        for name, entry in entries.items()
    }
