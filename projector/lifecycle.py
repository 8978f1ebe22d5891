"""The lifecycle of a projection version: its states, the transitions between them, who may
make each, and whether a rebuild's owner is still alive.

Every state a checkpoint records is decided here and nowhere else: code elsewhere names what
happened (a ``Trigger``) and who it acts for (an ``Actor``), and ``transition`` looks the move
up in ``TRANSITIONS``, refusing one that is not there with ``IllegalTransition``. The table is
plain data, so a new state or transition (leases, say) is a new row, not new branches spread
over the daemon, the runner and the rebuild; ``tests/projector/test_lifecycle.py`` walks it and
``tests/projector/test_state_writes.py`` fails if a projector module spells a state itself.

"Failed" is recorded once: a version is failed exactly when it carries the event it failed on
(``Standing.failure``); its state is derived from that, never stored beside it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from shared.contract.read_models import FailedEvent, RegistryEntry

Phase = Literal[
    "not_started",  # no checkpoint yet
    "catching_up",  # fed by the daemon, behind the head of the log
    "live",  # fed by the daemon, at the head of the log
    "rebuilding",  # built by a rebuild next to the active version
    "failing",  # an error of its own (not an event's fault): paused, retried with backoff
    "store_unavailable",  # waiting out an outage of either store
    "stopped",  # the daemon exited cleanly
]
# What a version that is not failed is doing. A failed one stopped on an event and does nothing
# until the daemon retries it at start-up, an operator parks the event, or a rebuild resumes.
State = Literal[Phase, "failed"]
STATES: tuple[State, ...] = get_args(State)
PHASES: tuple[Phase, ...] = get_args(Phase)
_FAILED: State = "failed"


class Actor(enum.StrEnum):
    """Who moves a version: the daemon feeding active versions, a rebuild building its own
    version, or an operator command (the CLI or the admin API)."""

    DAEMON = "daemon"
    REBUILD = "rebuild"
    OPERATOR = "operator"


class Trigger(enum.StrEnum):
    """What happened to a version."""

    RESUMED = "resumed"  # a daemon session starts feeding it
    RETRIED = "retried"  # the daemon, starting, retries the event it failed on
    CLAIMED = "claimed"  # a rebuild starts (or resumes) building it
    BATCH_APPLIED = "batch_applied"  # a batch was applied, short of the head of the log
    CAUGHT_UP = "caught_up"  # a batch was applied up to the head of the log
    TROUBLED = "troubled"  # an error of its own: paused, retried later (needs a reason)
    SESSION_ERRED = "session_erred"  # the whole session failed, not an outage (needs a reason)
    STORE_UNAVAILABLE = "store_unavailable"  # a store is down (needs a reason)
    EVENT_FAILED = "event_failed"  # a handler keeps failing on an event (needs the failure)
    STOPPED = "stopped"  # the daemon exits cleanly
    SWITCHED = "switched"  # the rebuild made it the active version
    PARKED = "parked"  # an operator parked the event it failed on


@dataclass(frozen=True, slots=True)
class Transition:
    """``actor`` may move a version from ``source`` to ``target`` when ``trigger`` happens."""

    trigger: Trigger
    actor: Actor
    source: State
    target: State


def _rule(
    trigger: Trigger, actors: Iterable[Actor], moves: Mapping[State, State]
) -> tuple[Transition, ...]:
    return tuple(
        Transition(trigger, actor, source, target)
        for actor in actors
        for source, target in moves.items()
    )


def _to(target: State, sources: Iterable[State]) -> dict[State, State]:
    return dict.fromkeys(sources, target)


def _stay(sources: Iterable[State]) -> dict[State, State]:
    return {source: source for source in sources}


# The states a version is in while its runner feeds it: a batch may move any of them.
_FED: tuple[State, ...] = ("catching_up", "live", "rebuilding", "failing", "store_unavailable")
# A rebuild's version is never catching_up or live until it is switched (an operator's park
# makes it catching_up, but the rebuild claims it again before feeding it).
_BUILT: tuple[State, ...] = ("rebuilding", "failing", "store_unavailable")
_DAEMON, _REBUILD, _OPERATOR = (Actor.DAEMON,), (Actor.REBUILD,), (Actor.OPERATOR,)

TRANSITIONS: tuple[Transition, ...] = (
    *_rule(
        Trigger.RESUMED,
        _DAEMON,
        _to("catching_up", ("not_started", "store_unavailable", "failing", "stopped"))
        | _stay(("catching_up", "live", "rebuilding")),
    ),
    *_rule(Trigger.RETRIED, _DAEMON, _to("catching_up", ("failed",))),
    *_rule(
        Trigger.CLAIMED,
        _REBUILD,
        _to("rebuilding", ("not_started", "catching_up", "failed", *_BUILT)),
    ),
    *_rule(
        Trigger.BATCH_APPLIED,
        _DAEMON,
        _stay(("catching_up", "live", "rebuilding"))
        | _to("catching_up", ("failing", "store_unavailable")),
    ),
    *_rule(Trigger.BATCH_APPLIED, _REBUILD, _to("rebuilding", _BUILT)),
    *_rule(Trigger.CAUGHT_UP, _DAEMON, _to("live", _FED)),
    *_rule(Trigger.CAUGHT_UP, _REBUILD, _to("rebuilding", _BUILT)),
    *_rule(Trigger.TROUBLED, _DAEMON, _to("failing", _FED)),
    *_rule(Trigger.TROUBLED, _REBUILD, _to("failing", _BUILT)),
    # A rebuild's version shows "rebuilding" through outages and session errors (with the
    # reason recorded); only an error of its own makes it failing.
    *_rule(Trigger.SESSION_ERRED, _DAEMON, _to("failing", _FED)),
    *_rule(Trigger.SESSION_ERRED, _REBUILD, _stay(_BUILT)),
    *_rule(Trigger.STORE_UNAVAILABLE, _DAEMON, _to("store_unavailable", _FED)),
    *_rule(Trigger.STORE_UNAVAILABLE, _REBUILD, _stay(_BUILT)),
    *_rule(Trigger.EVENT_FAILED, _DAEMON, _to("failed", _FED)),
    *_rule(Trigger.EVENT_FAILED, _REBUILD, _to("failed", _BUILT)),
    *_rule(Trigger.STOPPED, _DAEMON, _to("stopped", _FED)),
    # A version paused as failing may be switched to once it caught up and the switch wait
    # ran out, as a slow one would be: the daemon then retries it.
    *_rule(Trigger.SWITCHED, _REBUILD, _to("live", ("rebuilding", "failing"))),
    *_rule(Trigger.PARKED, _OPERATOR, _to("catching_up", ("failed",))),
)
_MOVES: dict[tuple[Trigger, Actor, State], State] = {
    (t.trigger, t.actor, t.source): t.target for t in TRANSITIONS
}
if len(_MOVES) != len(TRANSITIONS):  # pragma: no cover - a mistake in the table above
    raise AssertionError("TRANSITIONS holds two moves for one trigger, actor and state")
# Triggers that record why (kept until the next transition) and the one that records the event.
_WITH_REASON = frozenset({Trigger.TROUBLED, Trigger.SESSION_ERRED, Trigger.STORE_UNAVAILABLE})


class IllegalTransition(Exception):
    """``transition`` was asked for a move ``TRANSITIONS`` does not hold."""

    def __init__(self, trigger: Trigger, actor: Actor, source: State) -> None:
        self.trigger = trigger
        self.actor = actor
        self.source = source
        allowed = sorted(t.source for t in TRANSITIONS if (t.trigger, t.actor) == (trigger, actor))
        super().__init__(
            f"illegal transition: {trigger} by the {actor} from {source!r} "
            f"(allowed from: {', '.join(allowed) or 'nowhere'})"
        )


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a projection version stands: what it is doing (``phase``), or the event it failed
    on (``failure``), never both; and while failing or waiting out an outage, why."""

    phase: Phase | None = "not_started"
    failure: FailedEvent | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.phase is None) == (self.failure is None):
            raise ValueError(f"a standing has a phase or a failure, not both nor neither: {self}")

    @property
    def state(self) -> State:
        return _FAILED if self.phase is None else self.phase

    @property
    def failing(self) -> bool:
        """Paused after an error of its own, retried with backoff (told apart from failed)."""
        return self.phase == "failing"


NOT_STARTED = Standing()


def transition(
    standing: Standing,
    trigger: Trigger,
    actor: Actor,
    *,
    reason: str | None = None,
    failure: FailedEvent | None = None,
) -> Standing:
    """Where ``standing`` goes when ``trigger`` happens to it, acting for ``actor``.

    Raises IllegalTransition for a move ``TRANSITIONS`` does not hold. ``reason`` is required
    by (and kept only for) the triggers that say why, ``failure`` by EVENT_FAILED.
    """
    target = _MOVES.get((trigger, actor, standing.state))
    if target is None:
        raise IllegalTransition(trigger, actor, standing.state)
    if (trigger in _WITH_REASON) != (reason is not None):
        raise ValueError(f"{trigger}: a reason is {'required' if reason is None else 'not kept'}")
    if (target == _FAILED) != (failure is not None):
        raise ValueError(f"{trigger}: the failed event goes with the move to failed, only")
    if failure is not None:
        return Standing(phase=None, failure=failure)
    phase = next(p for p in PHASES if p == target)
    return Standing(phase=phase, reason=reason)


# A version the daemon feeds before it has a checkpoint.
FEEDING_FROM_SCRATCH = transition(NOT_STARTED, Trigger.RESUMED, Actor.DAEMON)


def stored_standing(state: str | None, failure: FailedEvent | None, reason: str | None) -> Standing:
    """A standing as a checkpoint recorded it. A recorded failure makes it failed whatever the
    state says; a missing state (older documents) reads as catching up."""
    if failure is not None:
        return Standing(phase=None, failure=failure)
    phase = next((p for p in PHASES if p == state), None)
    if phase is None and state not in (None, _FAILED):
        raise ValueError(f"unknown projection state {state!r}; known: {', '.join(STATES)}")
    return Standing(phase=phase or "catching_up", reason=reason)


# A rebuild whose owner has not written a heartbeat for this long is considered abandoned: its
# claim may be taken over, and it no longer counts as running.
REBUILD_STALE_AFTER = timedelta(seconds=30)


def rebuild_owner_alive(entry: RegistryEntry, now: datetime) -> bool:
    """Whether ``entry`` shows a rebuild whose owner is still at work at ``now``: one claims the
    version and its heartbeat is fresh. The one rule for taking a claim over, for a rebuild
    being "running" in status, and for the API refusing a second rebuild."""
    beat = entry.rebuild_heartbeat_at
    return (
        entry.rebuilding_version is not None
        and entry.rebuild_owner is not None
        and beat is not None
        and now - beat < REBUILD_STALE_AFTER
    )
