"""A warning that repeats under load without flooding the log: at most one line per interval.

Refusals (a full waiter list, a connection over the cap, a client too slow to send its request)
come in bursts of thousands when somebody misbehaves. One line per refusal would turn an attack
on the API into an attack on the disk, so each kind of refusal logs its first occurrence at once
and then one line per interval, saying how many were folded into it. Never a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL_S = 10.0


class ThrottledWarning:
    """``warn()`` logs ``message`` at most once per ``interval_s``; the next line it lets
    through counts the occurrences it folded since the previous one."""

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._message = message
        self._interval_s = interval_s
        self._clock = clock
        self._next_line_at = float("-inf")
        self._folded = 0
        self.occurrences = 0

    def warn(self, *args: object) -> None:
        self.occurrences += 1
        now = self._clock()
        if now < self._next_line_at:
            self._folded += 1
            return
        folded, self._folded = self._folded, 0
        self._next_line_at = now + self._interval_s
        suffix = f" ({folded} more like it since the last line)" if folded else ""
        self._logger.warning(self._message + suffix, *args)
