"""Two ``projector run`` processes sharing the projections through leases, on this package's
embedded servers: kill -9 of an owner under traffic, an owner paused past its lease (SIGSTOP,
then SIGCONT), and SIGTERM of an owner. The projections always end up owned by the live
instance, no checkpoint ever moves backwards, a paused owner writes nothing once it resumes,
and the read models equal a clean rebuild document by document."""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import pytest

from projector.leases import LeaseDocument, live_instances
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.contract.read_models import collection_name
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from tests.projector.lease_support import (
    CATCH_UP_S,
    NAMES,
    CheckpointWatch,
    LeaseWatch,
    Traffic,
    clean_rebuild,
    differences,
    fenced_by_owners,
    head,
    live_leases,
    owned_by,
    read_models,
    spread_as,
    summary,
    taken_from,
)
from tests.projector.processes import projector_env, start_projector
from tests.projector.support import random_day, wait_for_position
from tests.waiting import wait_until

LEASE_S = "2"
# SIGTERM must hand over before the old lease expires: the other instance takes the leases on
# its next heartbeat (every lease / 3) after they were given back; the old lease expires a lease
# after its last renewal (up to lease / 3 before the stop). A longer lease leaves that proof
# room on a busy machine, and costs nothing when the leases are given back.
STOP_LEASE_S = "6"


@pytest.fixture
def eventstore_uri(fresh_eventstore_uri: str) -> str:
    """A log holding only this test's events: the clean rebuild compares every document."""
    return fresh_eventstore_uri


class Projector:
    """A ``projector run`` process named ``instance_id``, its output collected as it comes."""

    def __init__(self, env: dict[str, str], instance_id: str) -> None:
        self.instance_id = instance_id
        self.process = start_projector({**env, "PROJECTOR_INSTANCE_ID": instance_id})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    async def logged(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM (SIGCONT first, should it be paused) and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._reader.join(10)


@contextmanager
def projectors(env: dict[str, str], *ids: str) -> Iterator[dict[str, Projector]]:
    """Processes named ``ids``, killed at the end whatever happened."""
    started: dict[str, Projector] = {}
    try:
        for instance_id in ids:
            started[instance_id] = Projector(env, instance_id)
        yield started
    finally:
        for each in started.values():
            each.kill()


def environment(
    eventstore_uri: str, mongo_uri: str, database: str, lease_s: str = LEASE_S
) -> dict[str, str]:
    return projector_env(
        eventstore_uri,
        mongo_uri,
        database,
        PROJECTOR_LEASE_S=lease_s,
        PROJECTOR_BATCH_SIZE="50",
        LOG_LEVEL="INFO",
    )


@asynccontextmanager
async def checked(
    document_store: DocumentStore, event_store: EsdbEventStore, mongo_uri: str, traffic: Traffic
) -> AsyncIterator[CheckpointWatch]:
    """Watch every checkpoint meanwhile; afterwards, once the projectors caught up with the
    traffic: no checkpoint went backwards and the read models equal a clean rebuild."""
    watch = CheckpointWatch(document_store)
    async with watch.watching():
        yield watch
    assert watch.reads > 0 and not watch.regressions, watch.regressions[:10]
    ours = await read_models(document_store)
    assert len(ours["order_views"]) == len(traffic.orders)
    last = await head(event_store)
    assert differences(ours, await clean_rebuild(event_store, mongo_uri, last)) == []


async def caught_up(document_store: DocumentStore, event_store: EsdbEventStore) -> None:
    """Every projection at the head of the log, fed by the owner of its lease."""
    await wait_for_position(document_store, await head(event_store), NAMES, within_s=CATCH_UP_S)
    await wait_until(partial(fenced_by_owners, document_store), "every projection fed", CATCH_UP_S)


def fed_under(watch: CheckpointWatch, name: str, token: int, since: int) -> bool:
    """Whether ``name``'s checkpoint moved past ``since`` under ``token`` or a newer one: the
    instance that took the lease with ``token`` may have lost and taken it again on a busy
    machine (a late heartbeat), which gives it a newer token; nobody else may stamp one."""
    seen = watch.latest.get(collection_name(name, 1))
    fence = seen.fence if seen is not None else None
    return fence is not None and fence >= token and watch.position(name) > since


async def with_log[T](instance: Projector, waiting: Awaitable[T]) -> T:
    """``waiting``; when it times out, the failure carries ``instance``'s log."""
    try:
        return await waiting
    except AssertionError as error:
        log = instance.output()
        raise AssertionError(f"{error}; {instance.instance_id}'s log:\n{log}") from None


async def past_random_point(watch: CheckpointWatch, traffic: Traffic, name: str) -> None:
    """Until ``name`` got past a random append of the traffic from now."""
    mark = await traffic.mark(random.randint(5, 40))

    async def past() -> bool:
        return watch.position(name) >= mark

    await wait_until(past, f"{name} to pass {mark}", CATCH_UP_S)


async def an_owner_past_a_random_point(
    document_store: DocumentStore,
    running: dict[str, Projector],
    watch: CheckpointWatch,
    traffic: Traffic,
) -> tuple[LeaseDocument, Projector, Projector]:
    """Once the two instances spread the leases 2 + 1: a random projection's lease, its owner
    and the other instance, after the projection got past a random point of the traffic."""
    spread = await wait_until(
        partial(spread_as, document_store, [1, 2]), "a 2 + 1 spread", CATCH_UP_S
    )
    name = random.choice(NAMES)
    owner = running[spread[name].owner or ""]
    (other,) = (p for p in running.values() if p is not owner)
    await past_random_point(watch, traffic, name)
    return spread[name], owner, other


async def test_kill_9_of_an_owner_under_traffic_hands_its_projections_to_the_other(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    env = environment(eventstore_uri, mongo_uri, mongo_database_name)
    traffic = Traffic(event_store, random_day())
    async with checked(document_store, event_store, mongo_uri, traffic) as watch:
        with projectors(env, "a", "b") as running:
            async with traffic.flowing():
                lease, victim, survivor = await an_owner_past_a_random_point(
                    document_store, running, watch, traffic
                )
                name = lease.projection
                killed_at, at_kill = utc_now(), watch.position(name)
                victim.kill()
                assert victim.process.returncode == -signal.SIGKILL
                taken = await wait_until(
                    partial(taken_from, document_store, name, victim.instance_id),
                    f"{survivor.instance_id} to take {name}",
                    CATCH_UP_S,
                )
                assert taken.owner == survivor.instance_id and taken.acquired_at is not None

                async def fed() -> bool:
                    return fed_under(watch, name, taken.token, at_kill)

                await with_log(
                    survivor,
                    wait_until(fed, f"{survivor.instance_id} to feed {name}", CATCH_UP_S),
                )
                fed_s = (utc_now() - killed_at).total_seconds()
            await caught_up(document_store, event_store)
            leases = await live_leases(document_store)
            assert {lease.owner for lease in leases.values()} == {survivor.instance_id}
            assert survivor.stop() == 0, survivor.output()
    failover = (taken.acquired_at - killed_at).total_seconds()
    print(
        f"kill -9 of {victim.instance_id} ({name}): lease taken {summary([failover])}, "
        f"fed again {fed_s:.2f}s after the kill; {len(traffic.orders)} orders"
    )


async def test_an_owner_paused_past_its_lease_writes_nothing_once_it_resumes(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    env = environment(eventstore_uri, mongo_uri, mongo_database_name)
    traffic = Traffic(event_store, random_day())
    async with checked(document_store, event_store, mongo_uri, traffic) as watch:
        with projectors(env, "a", "b") as running:
            async with traffic.flowing():
                lease, zombie, other = await an_owner_past_a_random_point(
                    document_store, running, watch, traffic
                )
                name = lease.projection
                zombie.signal(signal.SIGSTOP)
                try:
                    taken = await wait_until(
                        partial(taken_from, document_store, name, zombie.instance_id),
                        f"{other.instance_id} to take {name} from the paused {zombie.instance_id}",
                        CATCH_UP_S,
                    )
                    assert taken.owner == other.instance_id
                    assert taken.token > lease.token
                    at_takeover = watch.position(name)

                    async def moved() -> bool:
                        return fed_under(watch, name, taken.token, at_takeover)

                    await with_log(
                        other,
                        wait_until(moved, f"{other.instance_id} to move {name}", CATCH_UP_S),
                    )
                finally:
                    zombie.signal(signal.SIGCONT)
                lost = f"projection {name}: lease lost; no longer fed by {zombie.instance_id}"
                await wait_until(partial(zombie.logged, lost), f"{zombie.instance_id}: {lost!r}")
                # Whatever it was doing when paused, it wrote no checkpoint under its old lease
                # (the watch would have seen the fence or the position go back): the
                # checkpoint carries the new owner's token, or a newer one should the
                # instances have spread the projections again since.
                seen = watch.latest[collection_name(name, 1)]
                assert seen.fence is not None and seen.fence >= taken.token
                await past_random_point(watch, traffic, name)
            await caught_up(document_store, event_store)
            for each in running.values():
                assert each.stop() == 0, each.output()
    print(f"{zombie.instance_id} paused holding {name}; its log after resuming:")
    print("".join(line for line in zombie.lines if "lease" in line)[-2000:])


async def test_sigterm_of_an_owner_hands_its_projections_over_before_its_leases_expire(
    event_store: EsdbEventStore,
    document_store: DocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    env = environment(eventstore_uri, mongo_uri, mongo_database_name, STOP_LEASE_S)
    traffic = Traffic(event_store, random_day())
    leases = LeaseWatch(document_store)
    async with checked(document_store, event_store, mongo_uri, traffic):
        with projectors(env, "a") as running:
            await wait_until(
                partial(spread_as, document_store, [3]), "a to hold every lease", CATCH_UP_S
            )
            running["b"] = new = Projector(env, "b")
            async with traffic.flowing(), leases.watching():

                async def announced() -> bool:
                    return "b" in {
                        i.instance_id for i in await live_instances(document_store, utc_now())
                    }

                await wait_until(announced, "b to announce itself", CATCH_UP_S)
                await wait_for_position(document_store, await traffic.mark(5), NAMES)
                before = await live_leases(document_store)
                held = {name for name, lease in before.items() if lease.owner == "a"}
                assert held, before
                assert running["a"].stop() == 0, running["a"].output()
                taken = await wait_until(
                    partial(owned_by, document_store, "b"), "b to hold every lease", CATCH_UP_S
                )
            for name in sorted(held):
                expiry = leases.expiries[("a", name)]
                acquired = taken[name].acquired_at
                assert taken[name].owner == "b" and acquired is not None
                assert acquired < expiry, f"{name}: taken at {acquired}, a's lease ran to {expiry}"
                early = (expiry - acquired).total_seconds()
                print(f"{name}: handed over {early:.2f}s before a's lease would have expired")
            await caught_up(document_store, event_store)
            assert new.stop() == 0, new.output()
