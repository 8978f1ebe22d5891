"""`--advertise-host`: the host gossip (`esdb+discover://`) tells clients to dial (issue 10).

Like EventStoreDB (its client gossip answers `AdvertiseHostToClientAs`, else the node's host,
which is 127.0.0.1 for a node bound to 0.0.0.0), gossip never names a wildcard address, and the
port it names is the one the server listens on.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from esdbclient import StreamState

from embedded.eventstore.__main__ import parse_args
from embedded.eventstore.cluster_services import default_advertise_host
from tests.eventstore.clients import Library, SyncClient
from tests.eventstore.support import ids, new_events, stream_name
from tests.servers import BIN, ServerProcess


def _port(server: ServerProcess) -> int:
    return int(server.uri.partition("?")[0].rpartition(":")[2])


def _in_uri(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("0:0:0:0:0:0:0:0", "::1")],
    ids=["ipv4-wildcard", "ipv6-wildcard", "ipv6-wildcard-long"],
)
def test_a_wildcard_bind_advertises_the_loopback_and_the_bound_port(
    own_server: Callable[..., ServerProcess], library: Library, bind: str, loopback: str
) -> None:
    server = own_server(None, "--host", bind)  # --port 0: the port is picked when binding
    port = _port(server)
    seed = f"esdb+discover://127.0.0.1:{port}?Tls=false"
    with SyncClient(library, seed) as discovered:
        members = discovered.read_gossip()
        assert [(member.address, member.port) for member in members] == [(loopback, port)]
        stream = stream_name("es-advertise")
        events = new_events(2)
        discovered.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
        assert ids(discovered.get_stream(stream)) == ids(events)

    # What gossip names is an address clients can dial.
    (member,) = members
    with SyncClient(library, f"esdb://{_in_uri(member.address)}:{member.port}?Tls=false") as dialed:
        assert ids(dialed.get_stream(stream)) == ids(events)


def test_gossip_names_the_advertise_host_given(
    own_server: Callable[..., ServerProcess], library: Library
) -> None:
    server = own_server(None, "--host", "0.0.0.0", "--advertise-host", "some.name")
    port = _port(server)
    assert server.uri.startswith(f"esdb://some.name:{port}")
    # The clients keep their seed's connection when gossip lists a single member, so discovery
    # through 127.0.0.1 works although some.name does not resolve here.
    with SyncClient(library, f"esdb+discover://127.0.0.1:{port}?Tls=false") as discovered:
        members = discovered.read_gossip()
        assert [(member.address, member.port) for member in members] == [("some.name", port)]
        stream = stream_name("es-advertise")
        events = new_events(1)
        discovered.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=events)
        assert ids(discovered.get_stream(stream)) == ids(events)


@pytest.mark.parametrize(
    ("bind", "advertised"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("eventstore", "eventstore"),
        ("::1", "::1"),
        ("0.0.0.0", "127.0.0.1"),
        ("::", "::1"),
        ("::0", "::1"),
        ("0:0:0:0:0:0:0:0", "::1"),
    ],
)
def test_the_default_is_the_bind_host_unless_that_is_a_wildcard(bind: str, advertised: str) -> None:
    assert default_advertise_host(bind) == advertised


@pytest.mark.parametrize(
    "host", ["some.name", "eventstore", "eventstore_1", "node-1.cluster.local.", "10.0.0.5", "::1"]
)
def test_host_names_and_ip_addresses_are_accepted(tmp_path: Path, host: str) -> None:
    args = parse_args(["--db", str(tmp_path / "events.sqlite"), "--advertise-host", host])
    assert args.advertise_host == host


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("some name", "'some name' must not contain whitespace"),
        ("some.name ", "must not contain whitespace"),
        ("http://some.name", "'http://some.name' is a URI"),
        ("esdb://some.name:2113", "is a URI"),
        ("some.name:2113", "'some.name:2113' must not include a port"),
        ("[::1]:2113", "must not include a port"),
        ("[::1]", "without brackets"),
        ("0.0.0.0", "'0.0.0.0' is a wildcard address, which clients cannot dial"),
        ("::", "is a wildcard address"),
        ("some.name/path", "is not a valid host name or IP address"),
        ("some..name", "is not a valid host name or IP address"),
    ],
)
def test_a_bad_advertise_host_is_a_usage_error_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str, problem: str
) -> None:
    with pytest.raises(SystemExit) as exit:
        parse_args(["--db", str(tmp_path / "events.sqlite"), f"--advertise-host={host}"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "error: argument --advertise-host: " in error, error
    assert problem in error, error


def test_the_command_refuses_a_bad_advertise_host_without_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    command = [str(BIN / "embedded-eventstore"), "--db", str(db), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--advertise-host", "host:2113"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Refused before serving: stdout ends without a ready line (a server would print one).
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == ""
        stderr = process.stderr.read()
        assert process.wait() == 2, stderr
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == (
        "embedded-eventstore: error: argument --advertise-host: 'host:2113' must not include"
        " a port; the advertised port is the one the server listens on"
    )
    assert not db.exists()
