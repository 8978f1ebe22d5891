"""Each projector instance names itself (``PROJECTOR_INSTANCE_ID``, default ``<hostname>:<pid>``)
in every log line, in the leases and in status."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest

from projector.leases import read_leases
from shared.ports.document_store import DocumentStore
from shared.process.logging_setup import configure_logging
from tests.projector.processes import projector_env, start_projector
from tests.waiting import wait_until


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_line_names_the_instance(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    configure_logging("INFO", "json" if fmt == "json" else "text", instance="node-7:42")
    logging.getLogger("projector.test").info("hello %s", "there")
    [line] = capsys.readouterr().err.splitlines()
    if fmt == "json":
        entry = json.loads(line)
        assert (entry["instance"], entry["message"]) == ("node-7:42", "hello there")
    else:
        assert " node-7:42 projector.test " in line and line.endswith("hello there")


async def test_a_daemon_logs_its_id_and_holds_its_leases_under_it(
    eventstore_uri: str, mongo_uri: str, mongo_database_name: str, document_store: DocumentStore
) -> None:
    env = projector_env(
        eventstore_uri, mongo_uri, mongo_database_name, LOG_LEVEL="INFO", LOG_FORMAT="json"
    )
    env.pop("PROJECTOR_INSTANCE_ID", None)
    process = start_projector(env)
    try:
        expected = f"{socket.gethostname()}:{process.pid}"

        async def leased() -> bool:
            leases = await read_leases(document_store)
            return len(leases) == 3 and {lease.owner for lease in leases.values()} == {expected}

        await wait_until(leased, "the daemon to hold every lease under <hostname>:<pid>")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert entries, output
    assert {entry.get("instance") for entry in entries} == {expected}


def test_a_bad_instance_id_is_refused() -> None:
    env = projector_env(
        "esdb://127.0.0.1:1?Tls=false",
        "mongodb://127.0.0.1:1",
        "unused",
        PROJECTOR_INSTANCE_ID="has spaces",
    )
    process = start_projector(env)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "PROJECTOR_INSTANCE_ID" in output
