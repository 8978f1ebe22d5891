"""The command line: exit codes, messages, status, rebuild and dead letters end to end.

Commands run in-process through ``projector.cli.main`` (in a thread when the test itself runs
on the event loop); one test goes through ``python -m projector`` to cover the real entry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest

from projector import cli
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.read_models import resolve_active
from tests.conftest import unique
from tests.projector.processes import projector_env, run_projector
from tests.projector.support import (
    Order,
    append_orders,
    random_day,
    running_daemon,
    wait_for_position,
)

KNOWN = "order_views, customer_summaries, daily_sales"
UNREACHABLE = {
    "EVENTSTORE_URI": "esdb://127.0.0.1:1?Tls=false",
    "MONGO_URI": "mongodb://127.0.0.1:1",
    "PROJECTOR_METRICS_PORT": "0",
}
Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """``run(*args, main=cli.main, **env)`` -> (exit code, stdout + stderr)."""
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)

    def invoke(
        *args: str, main: Callable[[list[str]], None] = cli.main, **env: str
    ) -> tuple[int, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as exit:
            code = int(exit.code or 0)
        else:
            raise AssertionError("the command did not exit")
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    yield invoke


def test_an_unknown_projection_is_refused_with_the_known_names(run: Run) -> None:
    code, output = run("rebuild", "nope", **UNREACHABLE)
    assert code == 2
    assert "unknown projection 'nope'" in output and KNOWN in output
    code, output = run("nope", main=cli.rebuild_main, **UNREACHABLE)
    assert code == 2 and KNOWN in output
    code, output = run("dead-letter", "park", "nope", **UNREACHABLE)
    assert code == 2 and KNOWN in output


def test_a_bad_setting_names_the_variable_and_exits_2() -> None:
    env = projector_env(
        "esdb://127.0.0.1:1?Tls=false",
        "mongodb://127.0.0.1:1",
        "unused",
        PROJECTOR_BATCH_SIZE="lots",
        MONGO_URI="postgres://user:secret@db",
    )
    code, output = run_projector(env, "run")
    assert code == 2
    assert "PROJECTOR_BATCH_SIZE" in output and "MONGO_URI" in output
    assert "secret" not in output


def test_unreachable_stores_fail_start_up_after_bounded_retries(run: Run) -> None:
    code, output = run("status", PROJECTOR_STARTUP_WAIT_S="0.5", **UNREACHABLE)
    assert code == 1
    assert "eventstore" in output and "did not answer within 0.5s" in output


async def test_status_rebuild_and_dead_letters_from_the_command_line(
    run: Run,
    event_store: EsdbEventStore,
    document_store: MotorDocumentStore,
    eventstore_uri: str,
    mongo_uri: str,
    mongo_database_name: str,
) -> None:
    last = await append_orders(event_store, [Order(unique("customer"))], random_day())
    async with running_daemon(event_store, document_store):
        await wait_for_position(document_store, last)
    env = {
        "EVENTSTORE_URI": eventstore_uri,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_database_name,
        "PROJECTOR_RETIRE_GRACE_S": "0",
    }

    def command(*args: str) -> tuple[int, str]:
        return run(*args, **env)

    code, output = await asyncio.to_thread(command, "status", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["instances"] == []  # the daemon stopped: no live instance
    statuses = {s["name"]: s for s in report["projections"]}
    assert set(statuses) == {"order_views", "customer_summaries", "daily_sales"}
    views = statuses["order_views"]
    assert (views["version"], views["state"], views["lag_events"]) == (1, "stopped", 0)
    assert views["checkpoint_position"] >= last
    assert (views["owner"], views["lease_expires_at"]) == (None, None)  # released on stop

    code, output = await asyncio.to_thread(command, "status")
    assert code == 0 and "order_views" in output and "LAG EV" in output
    assert "OWNER" in output and "no live projector instance" in output

    code, output = await asyncio.to_thread(command, "rebuild", "order_views", "--no-progress")
    assert code == 0, output
    assert "switched from v1 to v2" in output
    assert (await resolve_active(document_store, "order_views")).version == 2

    code, output = await asyncio.to_thread(command, "dead-letter", "list")
    assert (code, output.strip()) == (0, "no parked events")
    code, output = await asyncio.to_thread(command, "dead-letter", "park", "daily_sales")
    assert code == 1 and "no failed version" in output
