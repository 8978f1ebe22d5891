"""Expected-revision rules: whether an append, delete or tombstone may go ahead.

Pure decision logic, kept apart from SQLite so the rules can be read and unit-tested on their own.
The numbered rules are those of the protocol reference (EventStoreDB's `IndexWriter.CheckCommit`
plus its soft-delete handling). Stored event ids are reached through two small callables, so a
test can pass a list where the server passes SQL queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

NO_REVISION = -1
TOMBSTONE_REVISION = 2**63 - 1  # EventStoreDB's EventNumber.DeletedStream (long.MaxValue)


class ExpectedState(Enum):
    """The non-numeric expectations a client can send instead of an exact revision."""

    ANY = "any"
    NO_STREAM = "no_stream"
    STREAM_EXISTS = "stream_exists"


Expected = int | ExpectedState

# EventStoreDB's numeric spelling of the expectations, used in its error texts.
_LEGACY_NUMBERS = {
    ExpectedState.ANY: -2,
    ExpectedState.NO_STREAM: -1,
    ExpectedState.STREAM_EXISTS: -4,
}


def legacy_number(expected: Expected) -> int:
    """The number EventStoreDB prints for an expectation ("Expected version: -2" for any)."""
    return expected if isinstance(expected, int) else _LEGACY_NUMBERS[expected]


@dataclass(frozen=True)
class StreamFacts:
    """What the rules need to know about a stream before a write."""

    last_revision: int = NO_REVISION  # physical last revision, counting soft-deleted events
    tombstoned: bool = False
    soft_deleted: bool = False
    has_metadata: bool = False


class Verdict(Enum):
    APPEND = "append"  # write the new events after last_revision
    IDEMPOTENT = "idempotent"  # the events are already there: write nothing, answer as before
    WRONG_VERSION = "wrong_version"
    DELETED = "deleted"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    # For IDEMPOTENT: revision of the last already-stored event that matched the request.
    matched_revision: int = NO_REVISION


APPEND = Decision(Verdict.APPEND)
WRONG_VERSION = Decision(Verdict.WRONG_VERSION)
DELETED = Decision(Verdict.DELETED)

IdsFrom = Callable[[int, int], Sequence[str]]
"""ids_from(revision, count): ids of the stored events at revision, revision+1, ... (or fewer)."""
RevisionOf = Callable[[str], int | None]
"""revision_of(event_id): revision of that event id in the stream, or None."""


def decide_append(
    facts: StreamFacts,
    expected: Expected,
    new_ids: Sequence[str],
    ids_from: IdsFrom,
    revision_of: RevisionOf,
) -> Decision:
    """Rules 1-6 for appending `new_ids` (at least one) to a stream."""
    if facts.tombstoned:  # rule 1
        return DELETED
    if expected is ExpectedState.STREAM_EXISTS:
        if facts.soft_deleted:  # rule 3
            return DELETED
        if facts.last_revision == NO_REVISION and not facts.has_metadata:
            return WRONG_VERSION
    cur = facts.last_revision
    if cur == NO_REVISION:  # rule 2
        return WRONG_VERSION if isinstance(expected, int) else APPEND
    if isinstance(expected, int):
        if expected == cur:  # rule 4
            return APPEND
        if expected > cur:
            return WRONG_VERSION
        return _already_written_after(expected, new_ids, ids_from, facts)  # rule 5
    if expected is ExpectedState.NO_STREAM:
        return _already_written_after(NO_REVISION, new_ids, ids_from, facts)  # rule 5
    return _already_written_anywhere(new_ids, ids_from, revision_of)  # rule 6


def _already_written_after(
    expected: int, new_ids: Sequence[str], ids_from: IdsFrom, facts: StreamFacts
) -> Decision:
    """Rule 5: the request repeats the events stored right after `expected`, or it is stale."""
    stored = ids_from(expected + 1, len(new_ids))
    if not stored or stored[0] != new_ids[0]:
        # A client that believes a soft-deleted stream is gone recreates it with no_stream.
        if expected == NO_REVISION and facts.soft_deleted:
            return APPEND
        return WRONG_VERSION
    if list(stored) != list(new_ids):
        return WRONG_VERSION  # a later event differs, or the batch runs past the end
    return Decision(Verdict.IDEMPOTENT, expected + len(new_ids))


def _already_written_anywhere(
    new_ids: Sequence[str], ids_from: IdsFrom, revision_of: RevisionOf
) -> Decision:
    """Rule 6 (any / stream_exists): a retry of an earlier append is recognised by its ids."""
    first = revision_of(new_ids[0])
    if first is None:
        return APPEND
    if list(ids_from(first, len(new_ids))) != list(new_ids):
        return WRONG_VERSION
    return Decision(Verdict.IDEMPOTENT, first + len(new_ids) - 1)


def decide_without_events(facts: StreamFacts, expected: Expected) -> Decision:
    """The expectation check for requests that carry no events (empty appends, tombstones)."""
    if facts.tombstoned:
        return DELETED
    cur = facts.last_revision
    if expected is ExpectedState.ANY:
        return APPEND
    if expected is ExpectedState.STREAM_EXISTS:
        if facts.soft_deleted:
            return DELETED
        return APPEND if cur != NO_REVISION or facts.has_metadata else WRONG_VERSION
    if expected is ExpectedState.NO_STREAM:
        return APPEND if cur == NO_REVISION or facts.soft_deleted else WRONG_VERSION
    return APPEND if expected == cur else WRONG_VERSION


def decide_soft_delete(facts: StreamFacts, expected: Expected) -> Decision:
    """Soft delete: like an append, but a stream that never had events cannot be deleted."""
    if facts.tombstoned:
        return DELETED
    if facts.last_revision == NO_REVISION:
        return WRONG_VERSION  # reported as "Actual version: -1", which the client calls NotFound
    return decide_without_events(facts, expected)
