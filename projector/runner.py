"""The runner: one catch-up subscription feeding a set of projection versions, batch by batch.

A *session* subscribes to ``$all`` (filtered server-side to the controller's event types) from
the lowest checkpoint among the targets still accepting events, then for each batch: read the
documents it affects, fold the events into them and write them back, save the checkpoints, and
ask the controller what next (go on, restart the session because the set of targets changed, or
finish). What the targets are and when to stop is the controller's business: the daemon and a
rebuild are two controllers.

Outages (``StoreUnavailable`` from either store, or the subscription dropping) end the session
and start a new one from the saved checkpoints, with capped exponential backoff and jitter
(tenacity) for as long as the outage lasts; each wait is reported to the controller so the
state is visible. The backoff starts over once a session made progress. Any other error is
handled the same way (state ``failing`` with the error instead of ``store_unavailable``): the
runner never gives up on a data or store error; only a controller's ``RunnerAbort`` ends it.
An error confined to one target (MongoDB refusing its documents) pauses only that target, with
its own backoff, while the others carry on; once the pause is over the session restarts from
the lowest checkpoint and the target catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from projector.batching import Batch, SubscriptionDropped, SubscriptionPump, batches
from projector.checkpoint_store import State, Target, save_checkpoints
from projector.dead_letters import parked_event_ids
from projector.dispatch import Dispatcher, Plan
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


def trouble_state(error: BaseException) -> State:
    """How an error the runner retries shows in a target's state."""
    return "store_unavailable" if isinstance(error, OUTAGES) else "failing"


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
    def live_state(self) -> State:
        """The state of a target once it has caught up with the log."""
        ...

    async def start_session(self) -> list[Target]:
        """The targets of a new session, with their saved progress."""
        ...

    async def after_batch(self, batch: Batch, targets: Sequence[Target]) -> Decision:
        """Called after every batch (also after empty ones while the log is idle)."""
        ...

    async def on_outage(self, reason: str, targets: Sequence[Target], state: State) -> None:
        """A store is unavailable (``state`` store_unavailable) or something else failed
        (``failing``); the runner will retry."""
        ...


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    batch_size: int = 500
    batch_wait_s: float = 0.1
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _report(self, controller: Controller, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        reason = describe(error) if error is not None else "unknown"
        kind = trouble_state(error) if error is not None else "failing"
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s (%s); retrying in %.1fs (attempt %d)",
            "store unavailable" if kind == "store_unavailable" else "error",
            reason,
            wait,
            state.attempt_number,
        )
        await self._tell_outage(controller, reason, kind)

    async def _tell_outage(self, controller: Controller, reason: str, kind: State) -> None:
        if self._observer is not None:
            self._observer.outage(reason)
        try:
            async with asyncio.timeout(2.0):
                await controller.on_outage(reason, self._targets, kind)
        except Exception as error:  # best effort: the store that is down may be MongoDB
            log.debug("could not record the outage: %s", describe(error))

    async def _session(self, controller: Controller) -> Decision:
        progressed = False
        try:
            targets = await controller.start_session()
            self._targets = targets
            parked = {t.name: await parked_event_ids(self._store, t.name) for t in targets}
            accepting = [t for t in targets if t.accepting]
            if not accepting:
                await self._sleep(self._settings.idle_s)
                return await self._decide(controller, Batch(), targets)
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
                    max_wait_s=self._settings.batch_wait_s,
                    idle_s=self._settings.idle_s,
                    stop=self._stop,
                ):
                    if not batch.empty:
                        advanced = await self._apply(batch, targets, controller.live_state, parked)
                        progressed = progressed or advanced
                    decision = await self._decide(controller, batch, targets)
                    if decision is not Decision.CONTINUE:
                        return decision
                    if self._resume_paused(targets):
                        return Decision.RESTART
            return Decision.FINISH
        except Exception as error:
            if not progressed or not _retried(error):
                raise
            # A checkpoint moved since the last outage: start the backoff over.
            log.warning("%s; resubscribing from checkpoints", describe(error))
            await self._tell_outage(controller, describe(error), trouble_state(error))
            return Decision.RESTART

    def _resume_paused(self, targets: Sequence[Target]) -> bool:
        """Un-pause the targets whose pause is over; True if any (the session restarts from the
        lowest checkpoint so that they catch up)."""
        now = self._clock()
        due = [t for t in targets if t.paused_until is not None and t.paused_until <= now]
        for target in due:
            log.info("projection %s v%d: retrying after an error", target.name, target.version)
            target.paused_until = None
        return bool(due)

    def _pause(self, plan: Plan, now: datetime) -> None:
        """A target whose batch failed for a reason of its own: failing, retried later."""
        outcome, reason = plan.outcome, plan.trouble or "unknown"
        outcome.troubles = plan.target.troubles + 1
        wait = min(
            self._settings.backoff_max_s,
            self._settings.backoff_initial_s * 2 ** (outcome.troubles - 1),
        )
        outcome.state, outcome.reason = "failing", reason
        outcome.paused_until = now + timedelta(seconds=wait)
        log.warning(
            "projection %s v%d failing (%s); retrying in %.1fs (attempt %d)",
            outcome.name,
            outcome.version,
            reason,
            wait,
            outcome.troubles,
        )

    async def _decide(
        self, controller: Controller, batch: Batch, targets: Sequence[Target]
    ) -> Decision:
        decision = await controller.after_batch(batch, targets)
        return Decision.FINISH if self._stop.is_set() else decision

    async def _apply(
        self,
        batch: Batch,
        targets: Sequence[Target],
        live_state: State,
        parked: dict[str, frozenset[UUID]],
    ) -> bool:
        """Read and fold, write, save checkpoints; True if a checkpoint moved forward."""
        plans = await self._dispatcher.apply(batch, targets, parked)
        now = self._clock()
        changed: list[Target] = []
        for plan in plans:
            outcome = plan.outcome
            if plan.trouble is not None:
                self._pause(plan, now)
            elif outcome.failure is not None:
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
            else:
                outcome.troubles, outcome.reason = 0, None
                if outcome.state in ("failing", "store_unavailable"):
                    outcome.state = "catching_up" if live_state == "live" else live_state
                if batch.caught_up:
                    outcome.state = live_state
            if outcome.progress() != plan.target.progress():
                changed.append(outcome)
        await save_checkpoints(self._store, changed, now)
        advanced = any(plan.outcome.position > plan.target.position for plan in plans)
        for plan in plans:
            plan.target.take(plan.outcome)
        if self._observer is not None:
            self._observer.batch(batch, targets)
        return advanced
