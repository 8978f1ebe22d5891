"""The runner: one catch-up subscription feeding a set of projection versions, batch by batch.

A *session* subscribes to ``$all`` (filtered server-side to the controller's event types) from
the lowest checkpoint among the targets still accepting events, then for each batch (whatever
the subscription has delivered, see ``projector.batching``): read the documents it affects,
fold the events into them and write them back, save the checkpoints, and ask the controller
what next (go on, restart the session because the set of targets changed, or
finish). What the targets are and when to stop is the controller's business: the daemon and a
rebuild are two controllers.

Outages (``StoreUnavailable`` from either store, or the subscription dropping) end the session
and start a new one from the saved checkpoints, with capped exponential backoff and jitter
(tenacity) for as long as the outage lasts; each wait is reported to the controller so the
state is visible. The backoff starts over once a session made progress. Any other error is
handled the same way (the targets are failing with the error rather than waiting for a store):
the runner never gives up on a data or store error; only a controller's ``RunnerAbort`` ends it.
An error confined to one target (MongoDB refusing its documents) pauses only that target, with
its own backoff, while the others carry on; once the pause is over the session restarts from
the lowest checkpoint and the target catches up.

Targets are immutable: the runner keeps the current ones (``targets``), replacing each with its
outcome once its checkpoint is saved, and hands them to the controller at every step. Their
lifecycle moves go through ``projector.lifecycle``, made for whoever feeds them.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from projector.batching import (
    Batch,
    SubscriptionDropped,
    SubscriptionPump,
    batches,
    wait_for_any,
)
from projector.checkpoint_store import Target
from projector.dead_letters import parked_event_ids
from projector.dispatch import Dispatcher, Plan
from projector.leases import LeaseLost
from projector.lifecycle import Trigger
from shared.contract.versioned_events import EventRegistry, utc_now
from shared.ports.document_store import DocumentStore
from shared.ports.errors import StoreUnavailable
from shared.ports.event_store import EventStoreReader

OUTAGES = (StoreUnavailable, SubscriptionDropped)
log = logging.getLogger(__name__)


class RunnerAbort(Exception):
    """Raised by a controller to end the run; never retried (e.g. a rebuild that lost)."""


def _retried(error: BaseException) -> bool:
    return isinstance(error, Exception) and not isinstance(error, RunnerAbort)


def trouble_trigger(error: BaseException) -> Trigger:
    """What an error the runner retries does to the targets it feeds."""
    return Trigger.STORE_UNAVAILABLE if isinstance(error, OUTAGES) else Trigger.SESSION_ERRED


class Decision(enum.Enum):
    CONTINUE = "continue"
    RESTART = "restart"
    FINISH = "finish"


class RunnerObserver(Protocol):
    """Told about every batch applied and every outage (metrics)."""

    def batch(self, batch: Batch, targets: Sequence[Target]) -> None: ...

    def outage(self, reason: str) -> None: ...


class Controller(Protocol):
    """What a runner feeds and when it stops."""

    @property
    def event_types(self) -> Sequence[str]:
        """The server-side filter of the subscription."""
        ...

    @property
    def wake(self) -> asyncio.Event | None:
        """Set when the controller has something to act on between batches (the daemon: its
        leases changed): an idle session asks ``after_batch`` at once instead of after
        ``idle_s``. None: nothing to wake for."""
        ...

    async def start_session(self, current: Sequence[Target]) -> list[Target]:
        """The targets of a new session, with their saved progress; ``current`` are the
        targets as the last session left them (none before the first)."""
        ...

    async def after_batch(self, batch: Batch, targets: Sequence[Target]) -> Decision:
        """Called after every batch (also after empty ones while the log is idle)."""
        ...

    async def on_outage(self, reason: str, targets: Sequence[Target]) -> None:
        """A store is unavailable or something else failed (the targets have moved already, see
        ``trouble_trigger``): record it; the runner will retry."""
        ...


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """``batch_size``: events per batch at most; ``batch_wait_s``: how long a batch may linger
    after its first event for more to arrive (0: it takes what is ready and goes, see
    ``projector.batching``)."""

    batch_size: int = 500
    batch_wait_s: float = 0.0
    idle_s: float = 1.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


class Runner:
    def __init__(
        self,
        event_store: EventStoreReader,
        document_store: DocumentStore,
        registry: EventRegistry,
        *,
        settings: RunnerSettings,
        stop: asyncio.Event,
        clock: Callable[[], datetime] = utc_now,
        observer: RunnerObserver | None = None,
    ) -> None:
        self._events = event_store
        self._store = document_store
        self._settings = settings
        self._stop = stop
        self._clock = clock
        self._dispatcher = Dispatcher(document_store, registry, clock)
        self._observer = observer
        self._targets: list[Target] = []

    @property
    def targets(self) -> list[Target]:
        """The targets as they stand (their progress saved), as the last session left them."""
        return list(self._targets)

    async def run(self, controller: Controller) -> None:
        """Until the controller finishes or ``stop`` is set (the current batch is finished and
        its checkpoints saved first)."""

        async def report(state: RetryCallState) -> None:
            await self._report(controller, state)

        while not self._stop.is_set():
            retrying = AsyncRetrying(
                retry=retry_if_exception(_retried),
                wait=wait_exponential_jitter(
                    multiplier=self._settings.backoff_initial_s,
                    max=self._settings.backoff_max_s,
                    jitter=self._settings.backoff_initial_s,
                ),
                stop=lambda _: self._stop.is_set(),
                before_sleep=report,
                sleep=self._sleep,
                reraise=True,
            )
            try:
                decision: Decision = await retrying(self._session, controller)
            except Exception as error:
                if self._stop.is_set() and _retried(error):
                    return
                raise
            if decision is Decision.FINISH:
                return

    async def _sleep(self, seconds: float) -> None:
        """Backoff that a stop request cuts short."""
        await wait_for_any((self._stop,), seconds)

    async def _report(self, controller: Controller, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        reason = describe(error) if error is not None else "unknown"
        trigger = trouble_trigger(error) if error is not None else Trigger.SESSION_ERRED
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s (%s); retrying in %.1fs (attempt %d)",
            "store unavailable" if trigger is Trigger.STORE_UNAVAILABLE else "error",
            reason,
            wait,
            state.attempt_number,
        )
        await self._tell_outage(controller, reason, trigger)

    async def _tell_outage(self, controller: Controller, reason: str, trigger: Trigger) -> None:
        if self._observer is not None:
            self._observer.outage(reason)
        self._targets = [
            target.moved(trigger, reason=reason) if target.accepting else target
            for target in self._targets
        ]
        try:
            async with asyncio.timeout(2.0):
                await controller.on_outage(reason, self._targets)
        except Exception as error:  # best effort: the store that is down may be MongoDB
            log.debug("could not record the outage: %s", describe(error))

    async def _session(self, controller: Controller) -> Decision:
        progressed = False
        try:
            self._targets = await controller.start_session(self._targets)
            self._dispatcher.forget_documents()
            parked = {t.name: await parked_event_ids(self._store, t.name) for t in self._targets}
            accepting = [t for t in self._targets if t.accepting]
            if not accepting:
                # Nothing to feed: look again after idle_s, or as soon as the controller wakes.
                await wait_for_any((self._stop, controller.wake), self._settings.idle_s)
                return await self._decide(controller, Batch())
            start = min(t.position for t in accepting)
            log.info(
                "subscribing to $all after position %d for %s",
                start,
                ", ".join(f"{t.name} v{t.version}" for t in accepting),
            )
            items = self._events.subscribe_all(start or None, controller.event_types)
            capacity = 2 * self._settings.batch_size
            async with SubscriptionPump(items, capacity) as pump:
                async for batch in batches(
                    pump,
                    size=self._settings.batch_size,
                    linger_s=self._settings.batch_wait_s,
                    idle_s=self._settings.idle_s,
                    stop=self._stop,
                    wake=controller.wake,
                ):
                    if not batch.empty:
                        advanced = await self._apply(batch, parked)
                        progressed = progressed or advanced
                    decision = await self._decide(controller, batch)
                    if decision is not Decision.CONTINUE:
                        return decision
                    if self._resume_paused():
                        return Decision.RESTART
            return Decision.FINISH
        except LeaseLost as lost:
            # Not an outage: the session starts over with the leases still held.
            log.warning("%s; starting over with the leases still held", lost)
            return Decision.RESTART
        except Exception as error:
            if not progressed or not _retried(error):
                raise
            # A checkpoint moved since the last outage: start the backoff over.
            log.warning("%s; resubscribing from checkpoints", describe(error))
            await self._tell_outage(controller, describe(error), trouble_trigger(error))
            return Decision.RESTART

    def _resume_paused(self) -> bool:
        """Un-pause the targets whose pause is over; True if any (the session restarts from the
        lowest checkpoint so that they catch up)."""
        now = self._clock()
        due = [t for t in self._targets if t.paused_until is not None and t.paused_until <= now]
        for target in due:
            log.info("projection %s v%d: retrying after an error", target.name, target.version)
        resumed = {id(t) for t in due}
        self._targets = [
            replace(t, paused_until=None) if id(t) in resumed else t for t in self._targets
        ]
        return bool(due)

    def _pause(self, plan: Plan, now: datetime) -> Target:
        """A target whose batch failed for a reason of its own: failing, retried later."""
        reason = plan.trouble or "unknown"
        troubles = plan.target.troubles + 1
        wait = min(
            self._settings.backoff_max_s,
            self._settings.backoff_initial_s * 2 ** (troubles - 1),
        )
        log.warning(
            "projection %s v%d failing (%s); retrying in %.1fs (attempt %d)",
            plan.target.name,
            plan.target.version,
            reason,
            wait,
            troubles,
        )
        return replace(
            plan.outcome.moved(Trigger.TROUBLED, reason=reason),
            troubles=troubles,
            paused_until=now + timedelta(seconds=wait),
        )

    def _settle(self, plan: Plan, batch: Batch, now: datetime) -> Target:
        """Where the target of ``plan`` stands once the batch is written: paused as failing,
        failed on an event, or moved on (live once the batch reached the head of the log)."""
        if plan.trouble is not None:
            return self._pause(plan, now)
        outcome = plan.outcome
        if outcome.failure is not None:
            failure = outcome.failure
            log.error(
                "projection %s v%d failed on event %s (%s at position %d in %s): %s",
                outcome.name,
                outcome.version,
                failure.event_id,
                failure.event_type,
                failure.position,
                failure.stream,
                failure.error,
            )
            return outcome
        trigger = Trigger.CAUGHT_UP if batch.caught_up else Trigger.BATCH_APPLIED
        return replace(outcome.moved(trigger), troubles=0)

    async def _decide(self, controller: Controller, batch: Batch) -> Decision:
        decision = await controller.after_batch(batch, self.targets)
        return Decision.FINISH if self._stop.is_set() else decision

    async def _apply(self, batch: Batch, parked: dict[str, frozenset[UUID]]) -> bool:
        """Read and fold, write, save checkpoints; True if a checkpoint moved forward."""
        plans = await self._dispatcher.apply(batch, self._targets, parked)
        if lost := [plan.target.name for plan in plans if not plan.target.writable]:
            raise LeaseLost(f"lease no longer held for {', '.join(lost)}; progress not saved")
        now = self._clock()
        # The checkpoints of versions whose documents changed go first: MongoDB applies a bulk
        # write's operations one by one, so reads waiting for one of those (read-your-writes
        # after the command that changed them) are released an operation or two sooner.
        ordered = sorted(plans, key=lambda plan: not plan.changed_documents)
        settled = {id(p.target): (p.target, self._settle(p, batch, now)) for p in ordered}
        await self._dispatcher.save_progress(list(settled.values()), now)
        advanced = any(outcome.position > before.position for before, outcome in settled.values())
        self._targets = [settled[id(t)][1] if id(t) in settled else t for t in self._targets]
        if self._observer is not None:
            self._observer.batch(batch, self._targets)
        return advanced
