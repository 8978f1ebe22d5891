"""Leases: which projector instance feeds which projection, when several run at once.

Any number of ``projector run`` instances may share one pair of stores. Each projection is fed by
exactly one live instance at a time: the one holding its lease, a document in ``projection_leases``
(``LeaseDocument``: owner, fencing token, expiry) that the owner renews by heartbeat. Nothing
else is needed: MongoDB's single-document compare-and-set decides every race.

- **Taking a lease** is one conditional update of a lease that is free, expired or already
  ours, which gives it a new **token**, greater than every token before it (at least the
  wall-clock milliseconds, so the order survives even a lost lease collection).
- **Fencing**: before feeding a projection the new owner stamps the token on the checkpoint of
  the version it feeds (``projector.checkpoint_store.stamp_fence``); every later checkpoint save
  matches only that token. A former owner that lost the lease without noticing (paused,
  partitioned) can therefore never move the checkpoint again, and its document writes are
  compare-and-set on each document's ``_position`` (``projector.dispatch``): a document a newer
  owner moved is never overwritten. It also checks its lease on its own clock before every
  write (``Lease.held``): a lease counts as held only until ``SAFETY`` before it expires for the
  others, measured from when the renewal was sent, so a process that was paused past its lease
  writes nothing once it runs again.
- **Spreading**: every instance also heartbeats a document in ``projector_instances``; an
  instance holds at most its fair share (``fair_share``) of the projections while others are
  live, hands one lease over per heartbeat while it holds more and another live instance fewer,
  and takes free or expired leases up to its share. Handing over is cooperative: the lease is
  first left out of ``held`` (the feeder stops feeding it once its batch in flight is saved) and
  given back when the feeder calls ``hand_over``, or at the next heartbeat at the latest; so the
  next owner starts exactly where this one stopped and no batch is cut short. A joining
  instance thus gets its share within a few heartbeats; a dead one's leases are taken once they
  expire (the keeper wakes up at the earliest expiry it saw); a stopping one (SIGTERM) releases
  its leases at once, after its last batch.

``LeaseKeeper`` does all of this for one instance; the daemon feeds what it holds
(``projector.daemon``). The lease length is ``PROJECTOR_LEASE_S``; wall clocks of the hosts are
assumed to agree to well within ``SAFETY`` (NTP), as for any lease kept in a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.contract.read_models import as_utc
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DeleteOne, DocumentStore, UpdateOne
from shared.ports.errors import StoreUnavailable

LEASES = "projection_leases"
INSTANCES = "projector_instances"
DEFAULT_LEASE_S = 10.0
# How often an instance below its share looks for a lease given back, between heartbeats.
STANDBY_POLL_S = 0.25
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger(__name__)


def default_instance_id() -> str:
    """``<hostname>:<pid>``: what an instance is called unless ``PROJECTOR_INSTANCE_ID`` says."""
    return f"{socket.gethostname()}:{os.getpid()}"


def safety(lease_s: float) -> float:
    """How long before its expiry (as the others see it) a lease stops counting as held."""
    return min(2.0, lease_s / 5)


def fair_share(projections: int, live_instances: int) -> int:
    """The most projections one of ``live_instances`` should hold."""
    return math.ceil(projections / max(live_instances, 1))


@dataclass(frozen=True, slots=True)
class LeaseDocument:
    """One projection's lease as stored: ``{_id: projection, owner, token, expires_at,
    acquired_at}``; a free lease has no owner and expired long ago."""

    projection: str
    owner: str | None = None
    token: int = 0
    expires_at: datetime = _NEVER
    acquired_at: datetime | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> LeaseDocument:
        owner, token = document.get("owner"), document.get("token")
        return cls(
            projection=str(document["_id"]),
            owner=owner if isinstance(owner, str) else None,
            token=token if isinstance(token, int) and not isinstance(token, bool) else 0,
            expires_at=as_utc(document.get("expires_at")) or _NEVER,
            acquired_at=as_utc(document.get("acquired_at")),
        )

    def live(self, now: datetime) -> bool:
        return self.owner is not None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class InstanceDocument:
    """A projector instance as stored: ``{_id: instance id, started_at, heartbeat_at,
    expires_at}``; live while not expired."""

    instance_id: str
    started_at: datetime | None
    heartbeat_at: datetime | None
    expires_at: datetime

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> InstanceDocument:
        return cls(
            instance_id=str(document["_id"]),
            started_at=as_utc(document.get("started_at")),
            heartbeat_at=as_utc(document.get("heartbeat_at")),
            expires_at=as_utc(document.get("expires_at")) or _NEVER,
        )


async def read_leases(store: DocumentStore) -> dict[str, LeaseDocument]:
    """Every lease document, by projection."""
    documents = await store.find(LEASES, {})
    return {lease.projection: lease for lease in map(LeaseDocument.from_document, documents)}


async def live_instances(store: DocumentStore, now: datetime) -> list[InstanceDocument]:
    """The instances whose heartbeat has not expired at ``now``, by id."""
    documents = await store.find(INSTANCES, {"expires_at": {"$gt": now}}, sort=[("_id", 1)])
    return [InstanceDocument.from_document(document) for document in documents]


class Lease:
    """A lease this instance holds: its token, and until when (on this process's monotonic
    clock) it may write under it. Shared by the targets fed under it; revoked when lost or
    given back, so writes in flight see it at once."""

    __slots__ = ("_monotonic", "_valid_until", "projection", "token")

    def __init__(
        self, projection: str, token: int, valid_until: float, monotonic: Callable[[], float]
    ) -> None:
        self.projection = projection
        self.token = token
        self._valid_until = valid_until
        self._monotonic = monotonic

    def held(self) -> bool:
        """Whether this instance may still write under the lease."""
        return self._monotonic() < self._valid_until

    def extend(self, valid_until: float) -> None:
        self._valid_until = max(self._valid_until, valid_until)

    def revoke(self) -> None:
        self._valid_until = -math.inf

    def __repr__(self) -> str:
        return f"Lease({self.projection!r}, token={self.token}, held={self.held()})"


class LeaseLost(Exception):
    """A write was about to be made, or was refused, under a lease this instance no longer
    holds: the session restarts with the leases it still holds."""


class LeaseObserver(Protocol):
    """Told what the keeper holds (metrics)."""

    def leases_held(self, count: int) -> None: ...

    def lease_taken_over(self, projection: str) -> None: ...


class LeaseKeeper:
    """Holds, renews, spreads and gives back the leases of one instance (see the module
    docstring). ``changed`` is set whenever the set of leases held changed; the daemon clears
    it when it starts a session with the new set."""

    def __init__(
        self,
        store: DocumentStore,
        projections: Sequence[str],
        *,
        instance_id: str,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        observer: LeaseObserver | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, not {lease_s}")
        self.instance_id = instance_id
        self.lease_s = lease_s
        self.changed = asyncio.Event()
        self._store = store
        self._projections = tuple(projections)
        self._clock = clock
        self._monotonic = monotonic
        self._observer = observer
        self._held: dict[str, Lease] = {}
        self._yielding: set[str] = set()  # held, offered to the feeder to hand over
        self._wake_at: float | None = None
        self._short = False  # below its share at the last tick: watching for a free lease
        self._started_at = clock()

    @property
    def renew_every_s(self) -> float:
        return self.lease_s / 3

    def held(self) -> dict[str, Lease]:
        """The leases this instance may write under now and should feed, by projection (not
        those being handed over, see ``hand_over``)."""
        return {
            name: lease
            for name, lease in self._held.items()
            if lease.held() and name not in self._yielding
        }

    async def hand_over(self) -> None:
        """Give back the leases this instance decided to hand over (above its share while
        another instance is short), once its feeder stopped feeding them: their last batch is
        saved, so whoever takes them next starts where this instance stopped, and nothing in
        flight is cut short. A feeder that does not call this in time has them given back at
        the next heartbeat anyway."""
        for name in sorted(self._yielding):
            await self._give_back(name)

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat until ``stop`` is set: a tick every ``renew_every_s`` (sooner when a lease
        this instance may take expires first); a store outage is logged and retried. Between
        ticks an instance below its share watches for a lease given back (``STANDBY_POLL_S``)
        and ticks at once when it sees one, so a handover does not wait for the next tick."""
        while not stop.is_set():
            await self.beat()
            delay = self.renew_every_s
            if self._wake_at is not None:
                delay = min(delay, max(self._wake_at - self._monotonic(), 0.05))
            await self._between_ticks(stop, delay)

    async def _between_ticks(self, stop: asyncio.Event, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not stop.is_set() and (left := until - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(left, STANDBY_POLL_S))
            if self._short and not stop.is_set() and await self._one_is_free():
                return

    async def _one_is_free(self) -> bool:
        """Whether a lease of ours to take is free now (one read; an error counts as no)."""
        try:
            leases = await read_leases(self._store)
        except Exception:
            return False
        return bool(self._free(leases, self._clock()))

    def _free(self, leases: Mapping[str, LeaseDocument], now: datetime) -> list[str]:
        """The projections whose lease this instance may take now: none yet, expired or given
        back, or still held under its own id (a restarted process of the same id)."""
        return [
            name
            for name in self._projections
            if name not in self._held
            and (
                (stored := leases.get(name)) is None
                or not stored.live(now)
                or stored.owner == self.instance_id
            )
        ]

    async def beat(self) -> None:
        """``tick``, logging instead of raising: a heartbeat that failed is retried next time."""
        try:
            await self.tick()
        except StoreUnavailable as error:
            log.warning("leases: store unavailable (%s); retrying", error)
        except Exception as error:
            log.warning("leases: heartbeat failed (%s: %s); retrying", type(error).__name__, error)

    async def tick(self) -> None:
        """One heartbeat: announce this instance, renew what it holds, then give back what its
        feeder did not hand over since the last heartbeat, or offer one lease above its share
        for handing over, or take leases up to its share."""
        sent = self._monotonic()
        now = self._clock()
        await self._announce(now)
        await self._renew(now, sent)
        before = dict(self._held)
        leases = await read_leases(self._store)
        self._forget_lost(leases, before, lapsed=True)
        instances = await live_instances(self._store, now)
        ids = {instance.instance_id for instance in instances} | {self.instance_id}
        share = fair_share(len(self._projections), len(ids))
        held = sorted(self.held())
        if self._yielding:  # offered at the last heartbeat and not handed over since
            await self.hand_over()
        elif len(held) > share and self._someone_short(leases, ids, share, now):
            self._yielding.add(held[-1])
            self.changed.set()
        elif len(held) < share:
            await self._take(leases, share - len(held), now, sent)
        self._short = len(self.held()) < share
        self._plan_wake(leases, now, sent)
        if self._observer is not None:
            self._observer.leases_held(len(self.held()))

    async def release_all(self) -> None:
        """Withdraw this instance and give every lease back (a clean stop). Withdrawn first:
        an instance that sees one of these leases free then counts its fair share without
        this one, and keeps watching until it has taken them all (withdrawn last, it could
        take its share of a 2-instance count from the first leases given back and leave the
        rest to its next heartbeat)."""
        await self._store.bulk_write(INSTANCES, [DeleteOne({"_id": self.instance_id})])
        for name in sorted(self._held):
            await self._give_back(name)
        if self._observer is not None:
            self._observer.leases_held(0)

    async def verify(self) -> None:
        """Drop the leases that the stored documents no longer give this instance (one whose
        validity merely ran out here waits for the next heartbeat: it may still be renewed)."""
        before = dict(self._held)
        self._forget_lost(await read_leases(self._store), before, lapsed=False)

    async def _announce(self, now: datetime) -> None:
        fields = {"heartbeat_at": now, "expires_at": now + timedelta(seconds=self.lease_s)}
        await self._store.bulk_write(
            INSTANCES,
            [
                UpdateOne(
                    {"_id": self.instance_id},
                    {"$set": fields, "$setOnInsert": {"started_at": self._started_at}},
                    upsert=True,
                )
            ],
        )

    async def _renew(self, now: datetime, sent: float) -> None:
        """Extend every lease still ours in the store. One whose validity ran out here (a late
        heartbeat) is renewed as long as it has not expired there: nobody may have taken it
        then, so it keeps its token and the work under it goes on without a new fence."""
        expires_at = now + timedelta(seconds=self.lease_s)
        for name, lease in list(self._held.items()):
            result = await self._store.bulk_write(
                LEASES,
                [
                    UpdateOne(
                        {
                            "_id": name,
                            "owner": self.instance_id,
                            "token": lease.token,
                            "expires_at": {"$gt": now},
                        },
                        {"$set": {"expires_at": expires_at}},
                    )
                ],
            )
            if result.changed:
                if not lease.held():
                    self.changed.set()  # it may be written under again
                lease.extend(self._valid_from(sent))

    def _forget_lost(
        self,
        leases: Mapping[str, LeaseDocument],
        before: Mapping[str, Lease],
        *,
        lapsed: bool,
    ) -> None:
        """Drop the leases the store no longer gives this instance, and with ``lapsed`` those
        whose validity ran out here (after a renewal that failed: expired there too).

        Only the leases held ``before`` ``leases`` was read, and still held as they were, are
        judged by it: a lease this instance took while the read was on its way (the heartbeat
        taking one while the feeder verifies) is not in that read, and is not lost."""
        lost = [
            name
            for name, lease in before.items()
            if self._held.get(name) is lease
            and (
                (lapsed and not lease.held())
                or (stored := leases.get(name)) is None
                or (stored.owner, stored.token) != (self.instance_id, lease.token)
            )
        ]
        for name in lost:
            self._held.pop(name).revoke()
            self._yielding.discard(name)
            log.warning("projection %s: lease lost; no longer fed by %s", name, self.instance_id)
        if lost:
            self.changed.set()

    def _someone_short(
        self, leases: Mapping[str, LeaseDocument], ids: Iterable[str], share: int, now: datetime
    ) -> bool:
        """Whether another live instance holds fewer than it could: giving one back helps."""
        counts = dict.fromkeys(ids, 0)
        for lease in leases.values():
            if lease.live(now) and lease.owner in counts and lease.projection in self._projections:
                counts[lease.owner] += 1
        others = [count for owner, count in counts.items() if owner != self.instance_id]
        least = min(others, default=None)
        return least is not None and least < share and least + 1 < len(self.held())

    async def _give_back(self, name: str) -> None:
        lease = self._held.pop(name, None)
        handed_over = name in self._yielding  # the feeder stopped feeding it already
        self._yielding.discard(name)
        if lease is None:
            return
        lease.revoke()  # no write under it from now on, before anybody else may take it
        if not handed_over:
            self.changed.set()
        await self._store.bulk_write(
            LEASES,
            [
                UpdateOne(
                    {"_id": name, "owner": self.instance_id, "token": lease.token},
                    {"$set": {"owner": None, "expires_at": _NEVER}},
                )
            ],
        )
        log.info("projection %s: lease given back by %s", name, self.instance_id)

    async def _take(
        self, leases: Mapping[str, LeaseDocument], wanted: int, now: datetime, sent: float
    ) -> None:
        for name in self._free(leases, now)[:wanted]:
            stored = leases.get(name) or LeaseDocument(name)
            token = max(stored.token + 1, int(now.timestamp() * 1000))
            condition: dict[str, Any] = {"_id": name, "token": stored.token}
            if stored.owner != self.instance_id:
                # Still expired when taken: an owner whose late renewal landed first keeps it.
                condition["expires_at"] = {"$lte": now}
            fields = {
                "owner": self.instance_id,
                "token": token,
                "expires_at": now + timedelta(seconds=self.lease_s),
                "acquired_at": now,
            }
            if name not in leases:
                await self._store.bulk_write(
                    LEASES,
                    [UpdateOne({"_id": name}, {"$setOnInsert": {"token": 0}}, upsert=True)],
                )
                condition = {"_id": name, "token": 0}
            result = await self._store.bulk_write(LEASES, [UpdateOne(condition, {"$set": fields})])
            if not result.changed:
                continue  # somebody else was faster
            self._held[name] = Lease(name, token, self._valid_from(sent), self._monotonic)
            self.changed.set()
            previous = stored.owner
            if previous is not None and previous != self.instance_id:
                log.warning(
                    "projection %s: lease taken over by %s from %s (expired at %s)",
                    name,
                    self.instance_id,
                    previous,
                    stored.expires_at.isoformat(),
                )
                if self._observer is not None:
                    self._observer.lease_taken_over(name)
            else:
                log.info("projection %s: lease taken by %s", name, self.instance_id)

    def _valid_from(self, sent: float) -> float:
        return sent + self.lease_s - safety(self.lease_s)

    def _plan_wake(self, leases: Mapping[str, LeaseDocument], now: datetime, sent: float) -> None:
        """Wake up when the first lease held by somebody else expires (its owner may be dead)."""
        others = [
            lease.expires_at
            for lease in leases.values()
            if lease.projection in self._projections
            and lease.live(now)
            and lease.owner != self.instance_id
        ]
        if not others:
            self._wake_at = None
            return
        self._wake_at = sent + (min(others) - now).total_seconds() + 0.05
