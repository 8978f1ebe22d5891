"""Plain-text tables for the CLI (status and dead letters)."""

from __future__ import annotations

from collections.abc import Sequence

from projector.dead_letters import DeadLetter
from projector.status import InstanceStatus, ProjectionStatus, ProjectorReport


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def _optional(value: object, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def report_tables(report: ProjectorReport) -> str:
    """The projections, then the live instances."""
    return f"{status_table(report.projections)}\n\n{instances_table(report.instances)}"


def instances_table(instances: Sequence[InstanceStatus]) -> str:
    if not instances:
        return "no live projector instance"
    header = ("INSTANCE", "STARTED", "HEARTBEAT", "LEASES")
    rows = [
        (
            i.instance_id,
            _optional(i.started_at and i.started_at.isoformat(timespec="seconds")),
            _optional(i.heartbeat_at and i.heartbeat_at.isoformat(timespec="seconds")),
            ", ".join(i.leases) or "-",
        )
        for i in instances
    ]
    return _table(header, rows)


def status_table(statuses: Sequence[ProjectionStatus]) -> str:
    header = (
        "PROJECTION",
        "VER",
        "STATE",
        "CHECKPOINT",
        "HEAD",
        "LAG EV",
        "LAG S",
        "OWNER",
        "REBUILD",
    )
    rows = []
    notes = []
    for status in statuses:
        lag = _optional(status.lag_events)
        if status.lag_events is not None and not status.lag_events_exact:
            lag = f"~{lag}"
        rebuild = "-"
        if status.rebuilding is not None:
            r = status.rebuilding
            running = "running" if r.running else "paused"
            rebuild = f"v{r.version} {r.progress:.0%} {r.state} ({running})"
        rows.append(
            (
                status.name,
                str(status.version),
                status.state,
                str(status.checkpoint_position),
                _optional(status.head_position),
                lag,
                _optional(status.lag_seconds, "{:.1f}"),
                _optional(status.owner),
                rebuild,
            )
        )
        if status.error is not None:
            e = status.error
            notes.append(
                f"{status.name}: failed on {e.event_type} {e.event_id} at position {e.position} "
                f"({e.stream}@{e.revision}) after {e.attempts} attempts: {e.error}\n"
                f"  park it to resume: projector dead-letter park {status.name}"
            )
        if status.reason:
            notes.append(f"{status.name}: {status.reason}")
    text = _table(header, rows)
    text += "\n(lag in events is approximate beyond a bound: ~ marks an estimate)"
    return "\n".join([text, *notes])


def dead_letters_table(letters: Sequence[DeadLetter]) -> str:
    if not letters:
        return "no parked events"
    header = ("PARKED AT", "PROJECTION", "EVENT TYPE", "EVENT ID", "POSITION", "ERROR")
    rows = [
        (
            d.parked_at.isoformat(timespec="seconds"),
            f"{d.projection} v{d.version}",
            d.event_type,
            str(d.event_id),
            str(d.position),
            d.error[:80],
        )
        for d in letters
    ]
    return _table(header, rows)
