"""Progress of a catch-up through the log: a tqdm bar with events per second and time left.

Global positions are offsets in the event store's transaction log (bytes in EventStoreDB), not
event counts, and other services' events sit between ours. So the only exact figure is how far
through the log (by position) we are; the number of events still to come is *estimated* by
assuming the rest of the log holds our events as densely as the part already read:

    estimated total = events so far x (head - start) / (position - start)

The estimate is refined on every update (and the head is refreshed while events keep arriving),
so the ETA settles after the first few batches.
"""

from __future__ import annotations

from typing import TextIO

from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs pinned in constraints


def log_fraction(position: int, start: int, head: int) -> float:
    """How far from ``start`` to ``head`` ``position`` is, by position (0..1)."""
    if head <= start:
        return 1.0
    return min(max((position - start) / (head - start), 0.0), 1.0)


def estimated_total_events(events: int, position: int, start: int, head: int) -> int | None:
    """Events between ``start`` and ``head``, extrapolated from ``events`` seen up to
    ``position`` (None before anything was seen)."""
    if events <= 0 or position <= start:
        return None
    if head <= position:
        return events
    return max(events, round(events * (head - start) / (position - start)))


class CatchUpProgress:
    """A progress bar over events; its total is an estimate (see the module docstring)."""

    def __init__(
        self,
        label: str,
        *,
        start: int,
        head: int,
        enabled: bool = True,
        file: TextIO | None = None,
    ) -> None:
        self.start = start
        self.head = head
        self.position = start
        self.events = 0
        self._bar = tqdm(
            desc=label,
            total=None,
            unit="ev",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=0.5,
            disable=not enabled,
            file=file,
        )

    def set_head(self, head: int) -> None:
        self.head = max(self.head, head)

    def update(self, events: int, position: int) -> None:
        self.events += events
        self.position = max(self.position, position)
        total = estimated_total_events(self.events, self.position, self.start, self.head)
        if total is not None:
            self._bar.total = total
        fraction = log_fraction(self.position, self.start, self.head)
        self._bar.set_postfix_str(f"log {fraction:.0%} (total is an estimate)", refresh=False)
        self._bar.update(events)

    @property
    def fraction(self) -> float:
        return log_fraction(self.position, self.start, self.head)

    def close(self) -> None:
        self._bar.close()
