"""Helpers shared by the event store tests: fresh names, new events, bounded waits."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from esdbclient import NewEvent

from tests.conftest import unique
from tests.eventstore.clients import AsyncClient, AsyncSubscription, RecordedEvent, Version

WAIT_S = 15.0

Appender = Callable[[str, Version, Sequence[NewEvent]], Coroutine[Any, Any, int]]


def new_events(count: int, event_type: str = "Tested", **fields: object) -> list[NewEvent]:
    """``count`` JSON events whose data carries their index, so order can be checked."""
    return [
        NewEvent(type=event_type, data=json.dumps({"index": index, **fields}).encode())
        for index in range(count)
    ]


def stream_name(prefix: str = "es-test") -> str:
    return unique(prefix)


def ids(events: Sequence[NewEvent | RecordedEvent]) -> list[str]:
    return [str(event.id) for event in events]


def positions(events: Sequence[RecordedEvent]) -> list[int]:
    return [_position(event) for event in events]


def _position(event: RecordedEvent) -> int:
    assert event.commit_position is not None, event
    return event.commit_position


def is_increasing(values: Sequence[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


async def read_stream(client: AsyncClient, stream: str, **kwargs: Any) -> list[RecordedEvent]:
    return list(await client.get_stream(stream, **kwargs))


async def read_all(client: AsyncClient, **kwargs: Any) -> list[RecordedEvent]:
    async with await client.read_all(**kwargs) as events:
        return [event async for event in events]


async def read_my_streams(
    client: AsyncClient, prefix: str, after: int, **kwargs: Any
) -> list[RecordedEvent]:
    """``$all`` from ``after`` (inclusive), only streams named ``prefix...``."""
    return await read_all(
        client,
        commit_position=after,
        filter_include=[f"{prefix}.*"],
        filter_by_stream_name=True,
        **kwargs,
    )


async def head_position(client: AsyncClient) -> int:
    """Position of the newest event in ``$all``, system events included."""
    return await client.get_commit_position(filter_exclude=[])


async def collect(
    subscription: AsyncSubscription,
    done: Callable[[list[RecordedEvent]], bool],
    within: float = WAIT_S,
) -> list[RecordedEvent]:
    """Items from ``subscription`` until ``done(items)``; fails if that never happens in time.

    Both clients turn a cancelled subscription into a silently ended iteration, so an ending loop
    is reported as a failure as well as a timeout.
    """
    received: list[RecordedEvent] = []
    try:
        async with asyncio.timeout(within):
            async for item in subscription:
                received.append(item)
                if done(received):
                    return received
    except TimeoutError:
        pass
    raise AssertionError(
        f"subscription ended or timed out after {len(received)} items: "
        + ", ".join(
            f"{type(item).__name__}:{item.type}@{item.commit_position}" for item in received[-10:]
        )
    )


def real_events(items: Sequence[RecordedEvent]) -> list[RecordedEvent]:
    """Only recorded events: no checkpoints or caught-up markers."""
    return [item for item in items if not (item.is_checkpoint or item.is_caught_up)]


def have_ids(expected: Sequence[NewEvent]) -> Callable[[list[RecordedEvent]], bool]:
    """``done`` predicate for one ``collect``: every expected id has arrived.

    It looks only at items it has not seen yet, so long subscriptions stay linear.
    """
    missing = set(ids(expected))
    checked = 0

    def done(items: list[RecordedEvent]) -> bool:
        nonlocal checked
        missing.difference_update(str(item.id) for item in real_events(items[checked:]))
        checked = len(items)
        return not missing

    return done


def caught_up(items: list[RecordedEvent]) -> bool:
    """``done`` predicate: the subscription said it has caught up."""
    return items[-1].is_caught_up


def data(event: RecordedEvent) -> dict[str, Any]:
    value = json.loads(event.data)
    assert isinstance(value, dict)
    return value
