"""The projection-version state machine (``projector.lifecycle``), given/when/then, no servers.

Every move in ``TRANSITIONS`` is made and lands where the table says, with the reason or the
failed event it carries; every move not in the table is refused; the named cases below pin the
rules the daemon, a rebuild and an operator rely on.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from projector.checkpoint_store import Target
from projector.lifecycle import (
    NOT_STARTED,
    PHASES,
    REBUILD_STALE_AFTER,
    STATES,
    TRANSITIONS,
    Actor,
    IllegalTransition,
    Standing,
    State,
    Transition,
    Trigger,
    rebuild_owner_alive,
    stored_standing,
    transition,
)
from projector.projections import OrderViews
from shared.contract.read_models import FailedEvent, RegistryEntry

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
WITH_REASON = {Trigger.TROUBLED, Trigger.SESSION_ERRED, Trigger.STORE_UNAVAILABLE}


def failure(position: int = 42) -> FailedEvent:
    return FailedEvent(
        event_id=uuid.uuid4(),
        stream="order-1",
        revision=3,
        position=position,
        event_type="ItemAdded",
        error="ValueError: boom",
        attempts=3,
        failed_at=NOW,
    )


def standing_in(state: State) -> Standing:
    """A version in ``state`` (a failed one with the event it failed on)."""
    if state == "failed":
        return Standing(phase=None, failure=failure())
    [phase] = [p for p in PHASES if p == state]
    return Standing(phase=phase)


def move(given: Standing, trigger: Trigger, actor: Actor) -> Standing:
    """``transition`` with what ``trigger`` needs: a reason, or the failed event."""
    allowed = {t.target for t in TRANSITIONS if (t.trigger, t.actor) == (trigger, actor)}
    return transition(
        given,
        trigger,
        actor,
        reason="MongoDB refused" if trigger in WITH_REASON else None,
        failure=failure(7) if allowed == {"failed"} else None,
    )


@pytest.mark.parametrize(
    "row", TRANSITIONS, ids=lambda t: f"{t.actor}:{t.trigger}:{t.source}->{t.target}"
)
def test_every_allowed_transition_lands_where_the_table_says(row: Transition) -> None:
    # Given a version in the row's source state
    given = standing_in(row.source)
    # When the row's actor makes its trigger happen
    after = move(given, row.trigger, row.actor)
    # Then it is in the row's target state, with the reason or failure that state carries
    assert after.state == row.target
    assert (after.reason is not None) == (row.trigger in WITH_REASON)
    assert (after.failure is not None) == (row.target == "failed")


def test_every_move_missing_from_the_table_is_refused_with_a_clear_error() -> None:
    allowed = {(t.trigger, t.actor, t.source) for t in TRANSITIONS}
    refused = 0
    for trigger, actor, source in itertools.product(Trigger, Actor, STATES):
        if (trigger, actor, source) in allowed:
            continue
        # Given a version in a state the table has no move out of for this trigger and actor
        given = standing_in(source)
        # When asked to move it anyway, then the move is refused, naming all three
        with pytest.raises(IllegalTransition) as refusal:
            move(given, trigger, actor)
        message = str(refusal.value)
        assert str(trigger) in message and str(actor) in message and repr(source) in message
        refused += 1
    assert refused > 0


@pytest.mark.parametrize(
    ("given", "trigger", "actor"),
    [
        ("live", Trigger.STOPPED, Actor.REBUILD),  # only the daemon stops its versions
        ("rebuilding", Trigger.SWITCHED, Actor.DAEMON),  # only a rebuild switches
        ("live", Trigger.PARKED, Actor.OPERATOR),  # nothing to park on a healthy version
        ("live", Trigger.CLAIMED, Actor.REBUILD),  # a rebuild never claims a live version
        ("failed", Trigger.CAUGHT_UP, Actor.DAEMON),  # a failed version gets no batches
        ("stopped", Trigger.BATCH_APPLIED, Actor.DAEMON),  # nor does a stopped one
        ("failed", Trigger.RETRIED, Actor.OPERATOR),  # retrying at start-up is the daemon's
    ],
)
def test_moves_refused_by_rule(given: State, trigger: Trigger, actor: Actor) -> None:
    with pytest.raises(IllegalTransition, match="illegal transition"):
        move(standing_in(given), trigger, actor)


def test_a_version_the_daemon_catches_up_is_live_one_a_rebuild_catches_up_is_rebuilding() -> None:
    assert move(standing_in("catching_up"), Trigger.CAUGHT_UP, Actor.DAEMON).state == "live"
    assert move(standing_in("rebuilding"), Trigger.CAUGHT_UP, Actor.REBUILD).state == "rebuilding"


def test_a_failing_version_that_applies_a_batch_recovers_and_forgets_why() -> None:
    # Given a daemon's version failing with a reason
    failing = move(standing_in("live"), Trigger.TROUBLED, Actor.DAEMON)
    assert (failing.state, failing.reason) == ("failing", "MongoDB refused")
    assert failing.failing
    # When a batch goes through, then it catches up again without the reason
    recovered = move(failing, Trigger.BATCH_APPLIED, Actor.DAEMON)
    assert (recovered.state, recovered.reason, recovered.failing) == ("catching_up", None, False)


def test_failed_is_recorded_once_by_the_event_it_failed_on() -> None:
    # Given a live version, when it fails on an event
    event = failure(99)
    failed = transition(standing_in("live"), Trigger.EVENT_FAILED, Actor.DAEMON, failure=event)
    # Then the event is its whole record: the state is derived from it
    assert (failed.state, failed.failure, failed.phase) == ("failed", event, None)
    # And an operator parking that event resumes it with no failure left
    parked = transition(failed, Trigger.PARKED, Actor.OPERATOR)
    assert (parked.state, parked.failure) == ("catching_up", None)


def test_a_standing_is_either_doing_something_or_failed() -> None:
    with pytest.raises(ValueError, match="not both nor neither"):
        Standing(phase="live", failure=failure())
    with pytest.raises(ValueError, match="not both nor neither"):
        Standing(phase=None)


def test_a_move_takes_exactly_what_its_trigger_records() -> None:
    live = standing_in("live")
    with pytest.raises(ValueError, match="reason is required"):
        transition(live, Trigger.TROUBLED, Actor.DAEMON)
    with pytest.raises(ValueError, match="reason is not kept"):
        transition(live, Trigger.CAUGHT_UP, Actor.DAEMON, reason="why")
    with pytest.raises(ValueError, match="failed event"):
        transition(live, Trigger.EVENT_FAILED, Actor.DAEMON)
    with pytest.raises(ValueError, match="failed event"):
        transition(live, Trigger.STOPPED, Actor.DAEMON, failure=failure())


def test_every_state_can_be_entered_and_left() -> None:
    """A state added without moves into and out of it is a dead end (or unreachable)."""
    entered = {t.target for t in TRANSITIONS if t.target != t.source}
    left = {t.source for t in TRANSITIONS if t.target != t.source}
    assert set(STATES) - entered == {NOT_STARTED.state}  # where every version starts
    assert set(STATES) - left == set()


def test_a_stored_checkpoint_reads_back_as_the_standing_it_recorded() -> None:
    event = failure()
    assert stored_standing("failed", event, None) == Standing(phase=None, failure=event)
    # A recorded failure is what makes a version failed, whatever the state field says.
    assert stored_standing("live", event, None).state == "failed"
    assert stored_standing("failing", None, "refused") == Standing("failing", reason="refused")
    assert stored_standing(None, None, None).state == "catching_up"  # older documents
    with pytest.raises(ValueError, match="unknown projection state 'paused'"):
        stored_standing("paused", None, None)


def test_a_target_moves_for_whoever_feeds_it() -> None:
    daemon = Target(OrderViews(), 1)
    rebuild = replace(daemon, fed_by=Actor.REBUILD).moved(Trigger.CLAIMED)
    assert daemon.moved(Trigger.CAUGHT_UP).state == "live"
    assert rebuild.moved(Trigger.CAUGHT_UP).state == "rebuilding"
    with pytest.raises(IllegalTransition):
        daemon.moved(Trigger.CLAIMED)


def claimed(beat: datetime | None, owner: str | None = "host:1:ab") -> RegistryEntry:
    return RegistryEntry(
        "order_views", 1, rebuilding_version=2, rebuild_owner=owner, rebuild_heartbeat_at=beat
    )


def test_a_rebuild_owner_is_alive_while_its_heartbeat_is_fresh() -> None:
    fresh = NOW - REBUILD_STALE_AFTER + timedelta(seconds=1)
    assert rebuild_owner_alive(claimed(fresh), NOW)
    assert not rebuild_owner_alive(claimed(NOW - REBUILD_STALE_AFTER), NOW)
    assert not rebuild_owner_alive(claimed(None), NOW)
    assert not rebuild_owner_alive(claimed(NOW, owner=None), NOW)  # released: resumable
    assert not rebuild_owner_alive(RegistryEntry("order_views", 1), NOW)  # nothing claimed
