"""Server-side `$all` filters: by event type or stream name, with a regex or a prefix list.

EventStoreDB matches with .NET `Regex.IsMatch`, i.e. search semantics (the pattern may match
anywhere unless anchored), which is Python's `re.search`. An empty regex means "use the prefix
list"; an empty prefix list then matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from esdbclient.protos.Grpc import streams_pb2

from embedded.eventstore.errors import invalid_argument

FilterOptions = streams_pb2.ReadReq.Options.FilterOptions

# EventStoreDB's search window when the client asks for `count` instead of `max`.
DEFAULT_WINDOW = 32
# Answers remembered per filter: a log repeats a few event types and stream names many times.
_MEMO_LIMIT = 4096


class EventFilter:
    def __init__(
        self, by_stream_name: bool, pattern: re.Pattern[str] | None, prefixes: tuple[str, ...]
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
            return self.pattern.search(subject) is not None
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
            pattern=_compile(expression.regex) if expression.regex else None,
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


def _compile(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as error:
        raise invalid_argument(f"Invalid filter regex {regex!r}: {error}") from error
