"""The projection registry: which version of each projection is active, which is being rebuilt.

One document per projection in ``projection_registry`` (``shared.contract.read_models``:
``RegistryEntry``, whose ``RegistryFields`` type the conditional updates below).

The read side resolves ``active_version``; the daemon feeds only the active version; a rebuild
claims ``rebuilding_version`` (with an owner and a heartbeat so two rebuilds of one projection
cannot run at once, see ``lifecycle.rebuild_owner_alive``) and switches ``active_version`` to it
in one conditional update. The version switched away from is recorded as ``retired_version``
and dropped once a grace period has passed, so queries that resolved it just before the switch
still read a complete model.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from projector.checkpoint_store import checkpointed_versions, delete_checkpoint
from projector.lifecycle import rebuild_owner_alive
from shared.contract.read_models import (
    REGISTRY,
    RegistryEntry,
    RegistryFields,
    collection_name,
    parse_collection_name,
    read_registry,
)
from shared.ports.document_store import DocumentStore, UpdateOne

# Unsetting a field: MongoDB ignores the values of an ``$unset``.
_GONE = None


class RebuildInProgress(Exception):
    """Another live rebuild owns this projection's rebuilding version."""

    def __init__(self, name: str, version: int | None) -> None:
        self.name = name
        self.version = version
        super().__init__(f"projection {name!r}: a rebuild of version {version} is running")


async def ensure_entries(store: DocumentStore, names: Iterable[str]) -> dict[str, RegistryEntry]:
    """The entries of ``names``, creating missing ones at version 1 (never touching others)."""
    wanted = list(names)
    ops = [
        UpdateOne({"_id": name}, {"$setOnInsert": RegistryFields(active_version=1)}, upsert=True)
        for name in wanted
    ]
    if ops:
        await store.bulk_write(REGISTRY, ops)
    return await read_registry(store, wanted)


async def read_entry(store: DocumentStore, name: str) -> RegistryEntry:
    return (await read_registry(store, [name]))[name]


async def claim_rebuild(
    store: DocumentStore, name: str, owner: str, now: datetime
) -> tuple[int, bool]:
    """Claim the rebuild of ``name`` for ``owner``: (version to build, True if resuming one).

    An unfinished rebuild (interrupted, or its owner gone quiet) is taken over and resumed;
    a live one raises ``RebuildInProgress``. The claim is a compare-and-set on what was read.
    """
    entry = (await ensure_entries(store, [name]))[name]
    if entry.rebuilding_version is not None:
        if rebuild_owner_alive(entry, now) and entry.rebuild_owner != owner:
            raise RebuildInProgress(name, entry.rebuilding_version)
        version, resumed = entry.rebuilding_version, True
        condition = RegistryFields(rebuilding_version=version, rebuild_owner=entry.rebuild_owner)
    else:
        version = max(entry.active_version, entry.retired_version or 0) + 1
        resumed = False
        condition = RegistryFields(active_version=entry.active_version, rebuilding_version=None)
    # Resuming sets the version it matched on: only the owner and heartbeat change then.
    fields = RegistryFields(
        rebuilding_version=version, rebuild_owner=owner, rebuild_heartbeat_at=now
    )
    await store.bulk_write(REGISTRY, [UpdateOne({"_id": name, **condition}, {"$set": fields})])
    claimed = await read_entry(store, name)
    if claimed.rebuild_owner != owner or claimed.rebuilding_version != version:
        raise RebuildInProgress(name, claimed.rebuilding_version)
    return version, resumed


async def heartbeat(store: DocumentStore, name: str, owner: str, now: datetime) -> None:
    await store.bulk_write(
        REGISTRY,
        [
            UpdateOne(
                {"_id": name, **RegistryFields(rebuild_owner=owner)},
                {"$set": RegistryFields(rebuild_heartbeat_at=now)},
            )
        ],
    )


async def release_rebuild(store: DocumentStore, name: str, owner: str) -> None:
    """Give up ownership but keep ``rebuilding_version``: the next rebuild resumes it."""
    await store.bulk_write(
        REGISTRY,
        [
            UpdateOne(
                {"_id": name, **RegistryFields(rebuild_owner=owner)},
                {"$unset": RegistryFields(rebuild_owner=_GONE, rebuild_heartbeat_at=_GONE)},
            )
        ],
    )


async def switch_active(
    store: DocumentStore, name: str, *, owner: str, old: int, new: int, now: datetime
) -> bool:
    """Make ``new`` the active version in one conditional update; False if it did not apply."""
    claimed = RegistryFields(active_version=old, rebuilding_version=new, rebuild_owner=owner)
    switched = RegistryFields(active_version=new, retired_version=old, switched_at=now)
    released = RegistryFields(
        rebuilding_version=_GONE, rebuild_owner=_GONE, rebuild_heartbeat_at=_GONE
    )
    await store.bulk_write(
        REGISTRY,
        [UpdateOne({"_id": name, **claimed}, {"$set": switched, "$unset": released})],
    )
    entry = await read_entry(store, name)
    return entry.active_version == new


def retire_due(entry: RegistryEntry, now: datetime, grace: timedelta) -> bool:
    return entry.retired_version is not None and (
        entry.switched_at is None or now - entry.switched_at >= grace
    )


async def drop_old_versions(
    store: DocumentStore, entry: RegistryEntry, now: datetime, grace: timedelta
) -> list[int]:
    """Drop versions below the active one (the retired one only after ``grace``).

    Versions above the active one are never touched here: they may be a rebuild that is just
    starting; a rebuild clears leftovers of its own version itself.
    """
    keep = {entry.active_version}
    if entry.retired_version is not None and not retire_due(entry, now, grace):
        keep.add(entry.retired_version)
    named = [parse_collection_name(name) for name in await store.list_collections()]
    versions = {version for projection, version in filter(None, named) if projection == entry.name}
    versions |= await checkpointed_versions(store, entry.name)
    dropped = sorted(v for v in versions if v < entry.active_version and v not in keep)
    for version in dropped:
        await drop_version(store, entry.name, version)
    if entry.retired_version is not None and entry.retired_version not in keep:
        await store.bulk_write(
            REGISTRY,
            [
                UpdateOne(
                    {"_id": entry.name, **RegistryFields(retired_version=entry.retired_version)},
                    {"$unset": RegistryFields(retired_version=_GONE)},
                )
            ],
        )
    return dropped


async def drop_version(store: DocumentStore, name: str, version: int) -> None:
    """Remove a version's collection and its checkpoint document."""
    collection = collection_name(name, version)
    await store.drop_collection(collection)
    await delete_checkpoint(store, collection)
