"""Server-side `$all` filters: by event type or stream name, with a regex or a prefix list.

EventStoreDB matches with .NET `Regex.Match(...).Success`, i.e. search semantics (the pattern
may match anywhere unless anchored). An empty regex means "use the prefix list"; an empty prefix
list then matches nothing.

Client regexes run on RE2 (linear time): a backtracking engine lets one pattern such as
`^(a+)+$` hold the GIL for hours and stall every client. RE2 has no lookarounds, but the one that
clients send — esdbclient's exclude filter `^(?!(p1$|p2$))` — is evaluated as "not matched by
`^(?:p1$|p2$)`". Any other pattern RE2 cannot compile is refused the way EventStoreDB refuses a
regex .NET cannot parse: `new Regex(...)` throws inside `Streams.Read`, so the call ends UNKNOWN.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc
import re2  # type: ignore[import-untyped]  # google-re2 ships no type information
from esdbclient.protos.Grpc import streams_pb2

from embedded.eventstore.errors import RpcFailure, invalid_argument

log = logging.getLogger("embedded.eventstore")

FilterOptions = streams_pb2.ReadReq.Options.FilterOptions

# EventStoreDB's search window when the client asks for `count` instead of `max`.
DEFAULT_WINDOW = 32
# Answers remembered per filter: a log repeats a few event types and stream names many times.
_MEMO_LIMIT = 4096


_NEGATIVE_LOOKAHEAD = "^(?!"


class FilterRegex:
    """A client's regex on RE2, with a leading `^(?!...)` kept as a separate pattern to refuse."""

    def __init__(self, regex: str) -> None:
        excluded, required = _split_leading_lookahead(regex)
        self.excluded = _compile(excluded, regex) if excluded is not None else None
        self.required = _compile(required, regex) if required else None

    def search(self, subject: str) -> bool:
        if self.excluded is not None and self.excluded.search(subject) is not None:
            return False
        return self.required is None or self.required.search(subject) is not None


class EventFilter:
    def __init__(
        self, by_stream_name: bool, pattern: FilterRegex | None, prefixes: tuple[str, ...]
    ) -> None:
        self.by_stream_name = by_stream_name
        self.pattern = pattern
        self.prefixes = prefixes
        self._memo: dict[str, bool] = {}

    def matches(self, stream: str, event_type: str) -> bool:
        subject = stream if self.by_stream_name else event_type
        answer = self._memo.get(subject)
        if answer is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            answer = self._memo[subject] = self._decide(subject)
        return answer

    def _decide(self, subject: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(subject)
        return subject.startswith(self.prefixes) if self.prefixes else False


@dataclass(frozen=True)
class FilterSpec:
    """The filter of a read (None: no filter) and, for subscriptions, the checkpoint interval."""

    event_filter: EventFilter | None
    checkpoint_interval: int | None  # events scanned between checkpoints; None: no checkpoints

    def matches(self, stream: str, event_type: str) -> bool:
        return self.event_filter is None or self.event_filter.matches(stream, event_type)


NO_FILTER = FilterSpec(None, None)


def filter_spec(options: streams_pb2.ReadReq.Options, subscription: bool) -> FilterSpec:
    """The filter of a ReadReq; bad filter options are INVALID_ARGUMENT, as in EventStoreDB."""
    if options.WhichOneof("filter_option") != "filter":
        return NO_FILTER
    filter_options = options.filter
    which = filter_options.WhichOneof("filter")
    if which is None:
        event_filter = None
    else:
        expression = getattr(filter_options, which)
        event_filter = EventFilter(
            by_stream_name=which == "stream_identifier",
            pattern=FilterRegex(expression.regex) if expression.regex else None,
            prefixes=tuple(expression.prefix),
        )
    window = filter_options.WhichOneof("window")
    if window is None:
        raise invalid_argument("Filter window (max or count) is required.")
    if not subscription:
        return FilterSpec(event_filter, None)
    size = filter_options.max if window == "max" else DEFAULT_WINDOW
    multiplier = filter_options.checkpointIntervalMultiplier
    if size <= 0:
        raise invalid_argument("Filter max search window must be greater than zero.")
    if multiplier <= 0:
        raise invalid_argument("Checkpoint interval multiplier must be greater than zero.")
    return FilterSpec(event_filter, size * multiplier)


def _split_leading_lookahead(regex: str) -> tuple[str | None, str]:
    """`^(?!X)Y` as (`^(?:X)`, `^(?:Y)`); any other regex as (None, regex).

    Y must have no top-level `|` (it would escape the leading `^`); an unbalanced lookahead is
    left whole for RE2 to refuse.
    """
    if not regex.startswith(_NEGATIVE_LOOKAHEAD):
        return None, regex
    end = _group_end(regex, len(_NEGATIVE_LOOKAHEAD))
    if end is None:
        return None, regex
    rest = regex[end + 1 :]
    if _group_end(rest + ")", 0, stop_at_bar=True) != len(rest):  # top-level `|` or `)`
        return None, regex
    body = regex[len(_NEGATIVE_LOOKAHEAD) : end]
    return f"^(?:{body})", f"^(?:{rest})" if rest else ""


def _group_end(regex: str, start: int, stop_at_bar: bool = False) -> int | None:
    """Index of the `)` closing the group whose body starts at `start`.

    None: unbalanced, or (with `stop_at_bar`) an alternation at the group's own level.
    """
    depth = 0
    index = start
    in_class = False
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            if regex[index + 1 : index + 2] == "^":
                index += 1
            if regex[index + 1 : index + 2] == "]":  # a leading `]` is a literal
                index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return index
            depth -= 1
        elif char == "|" and depth == 0 and stop_at_bar:
            return None
        index += 1
    return None


def _compile(pattern: str, regex: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print each refusal to stderr; one log line below
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        first = error.args[0] if error.args else None
        reason = first.decode() if isinstance(first, bytes) else error
        log.warning("refused filter regex %r: %s", regex, reason)
        raise RpcFailure(
            grpc.StatusCode.UNKNOWN,
            f"Invalid filter regex {regex!r}: {reason} (this server matches with RE2: no"
            " backreferences, no lookarounds except a leading ^(?!...) as esdbclient sends)",
        ) from error
