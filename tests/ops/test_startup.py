"""Start-up: waiting for a store (retries, a bounded budget, clear and redacted log lines), and
the one ``orders-api ready on http://HOST:PORT`` line once the API really listens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from shared.ports.errors import StoreUnavailable
from shared.process.startup import StoreUnreachable, wait_for_store
from tests.conftest import unique
from tests.ops.support import closed_port

BIN = Path(sys.executable).parent
READY_S = 60.0


async def test_a_store_is_retried_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.process.startup")
    calls = 0

    async def check() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise StoreUnavailable("mongodb", "connection refused")

    attempts = await wait_for_store("mongodb", check, 30, initial_backoff_s=0.01)
    assert attempts == calls == 3
    messages = [r.getMessage() for r in caplog.records]
    assert sum("waiting for mongodb (attempt" in m for m in messages) == 2
    assert "connection refused" in messages[0] and "next attempt in" in messages[0]
    assert messages[-1] == "mongodb is reachable (attempt 3)"


async def test_giving_up_names_the_store_without_its_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="shared.process.startup")

    async def check() -> None:
        raise ConnectionRefusedError("refused by mongodb://app:hunter2-secret@db:27017")

    with pytest.raises(StoreUnreachable) as raised:
        await wait_for_store(
            "mongodb at mongodb://app:hunter2-secret@db:27017", check, 0.2, initial_backoff_s=0.01
        )
    error = raised.value
    assert isinstance(error, StoreUnavailable)  # handled wherever outages are
    assert error.attempts >= 1
    assert str(error).startswith("mongodb at mongodb://***@db:27017 did not answer within 0.2s")
    for record in caplog.records:
        assert "hunter2-secret" not in record.getMessage()
    assert "giving up" in caplog.records[-1].getMessage()


async def test_a_hung_check_does_not_outlive_the_budget() -> None:
    never = asyncio.Event()

    async def check() -> None:
        await never.wait()

    with pytest.raises(StoreUnreachable, match="no answer within"):
        await wait_for_store("eventstore", check, 0.05, min_attempt_s=0.05)


async def test_a_check_that_swallows_its_cancellation_is_not_taken_for_an_answer() -> None:
    never = asyncio.Event()

    async def check() -> None:  # what esdbclient does with a cancelled read
        with contextlib.suppress(asyncio.CancelledError):
            await never.wait()

    with pytest.raises(StoreUnreachable, match="no answer within"):
        await wait_for_store("eventstore", check, 0.05, min_attempt_s=0.05)


async def test_a_stop_request_ends_the_wait() -> None:
    stop = asyncio.Event()
    calls = 0

    async def check() -> None:
        nonlocal calls
        calls += 1
        stop.set()
        raise StoreUnavailable("eventstore", "starting")

    with pytest.raises(StoreUnreachable):
        await wait_for_store("eventstore", check, 600, stop=stop)
    assert calls == 1


def _lines(process: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        into.put(line)


def test_the_api_says_once_that_it_is_ready(eventstore_uri: str, mongo_uri: str) -> None:
    port = closed_port()
    env = {
        **os.environ,
        "EVENTSTORE_URI": eventstore_uri,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": unique("ops").replace("-", "_")[:40],
        "LOG_FORMAT": "text",
    }
    env.pop("ADMIN_TOKEN", None)
    process = subprocess.Popen(
        [str(BIN / "orders-api"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process, lines), daemon=True).start()
    seen: list[str] = []
    try:
        expected = f"orders-api ready on http://127.0.0.1:{port}"
        while not any(expected in line for line in seen):
            try:
                seen.append(lines.get(timeout=READY_S))
            except queue.Empty:
                raise AssertionError("no ready line:\n" + "".join(seen)) from None
        # Right after the line, the API answers.
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    while True:
        try:
            seen.append(lines.get(timeout=5))
        except queue.Empty:
            break
    assert code in (0, -signal.SIGTERM), "".join(seen)  # uvicorn re-raises the signal
    assert sum("orders-api ready on" in line for line in seen) == 1, "".join(seen)


# Store URIs whose password a pattern cannot find (an unescaped "/" or "?" ends the authority
# early; an empty user name), and one that is well-formed but unreachable.
LEAKY_URIS = [
    ("EVENTSTORE_URI", "esdb://user:pa/ssLEAK1@127.0.0.1:{port}?Tls=false", "ssLEAK1"),
    ("EVENTSTORE_URI", "esdb://user:12/ssLEAK1@127.0.0.1:{port}?Tls=false", "ssLEAK1"),
    ("EVENTSTORE_URI", "esdb://:secretLEAK1@127.0.0.1:{port}?Tls=false", "secretLEAK1"),
    ("MONGO_URI", "mongodb://user:pa/ssLEAK1@127.0.0.1:{port}/", "ssLEAK1"),
    ("MONGO_URI", "mongodb://user:12?ssLEAK1@127.0.0.1:{port}/", "ssLEAK1"),
    ("MONGO_URI", "mongodb://:secretLEAK1@127.0.0.1:{port}/", "secretLEAK1"),
]
ENTRY_POINTS = {"orders-api": ["orders-api"], "projector run": ["projector", "run"]}


def _start_with(command: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EVENTSTORE_URI": f"esdb://127.0.0.1:{closed_port()}?Tls=false",
        "MONGO_URI": f"mongodb://127.0.0.1:{closed_port()}/?directConnection=true",
        "STARTUP_WAIT_S": "0.5",
        "PROJECTOR_STARTUP_WAIT_S": "0.5",
        "PROJECTOR_METRICS_PORT": "0",
        "API_PORT": str(closed_port()),
        "LOG_FORMAT": "text",
        **variables,
    }
    env.pop("ADMIN_TOKEN", None)
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("entry", "variable", "uri", "secret"),
    # Every URI through the API; one of each kind through the projector (each run costs a
    # process start, and both go through the same shared settings code).
    [("orders-api", *leaky) for leaky in LEAKY_URIS]
    + [("projector run", *LEAKY_URIS[i]) for i in (0, 4, 5)],
)
def test_a_malformed_store_uri_is_named_but_never_printed(
    entry: str, variable: str, uri: str, secret: str
) -> None:
    finished = _start_with(ENTRY_POINTS[entry], **{variable: uri.format(port=closed_port())})
    printed = finished.stdout + finished.stderr
    assert finished.returncode == 2, printed
    assert f"{variable}: " in printed
    assert secret not in printed, printed
    assert "Traceback" not in printed


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_an_unreachable_store_is_reported_without_its_password(entry: str) -> None:
    # The event store is the first one both processes wait for.
    uri = f"esdb://app:pw-LEAK1@127.0.0.1:{closed_port()}?Tls=false"
    finished = _start_with(ENTRY_POINTS[entry], EVENTSTORE_URI=uri)
    printed = finished.stdout + finished.stderr
    assert finished.returncode != 0, printed
    assert "eventstore at esdb://***@127.0.0.1" in printed, printed
    assert "pw-LEAK1" not in printed, printed
