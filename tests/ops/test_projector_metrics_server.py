"""The projector's ``/metrics`` endpoint: loopback by default, and idle or slow clients neither
hold it for ever nor lock a real scrape out."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from projector.metrics import ProjectorMetrics
from projector.metrics_server import MetricsServer
from projector.settings import ProjectorSettings
from tests.ops.support import closed_port

# Only a guard against a hang of the test itself; every wait below ends on a condition.
GUARD_S = 60.0


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe", "a sample to find in the answer", registry=registry).inc()
    return registry


@pytest.fixture
def server(registry: CollectorRegistry) -> Iterator[MetricsServer]:
    server = MetricsServer(registry, request_timeout_s=0.3, max_connections=4)
    server.start()
    yield server
    server.close()


def scrape(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=GUARD_S)


def closed_by_server(connection: socket.socket) -> bool:
    """Blocks until the server closes ``connection`` (True) or sends something (False)."""
    connection.settimeout(GUARD_S)
    return connection.recv(1) == b""


def test_the_default_host_is_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROJECTOR_METRICS_HOST", raising=False)
    assert ProjectorSettings().projector_metrics_host == "127.0.0.1"
    metrics = ProjectorMetrics()
    metrics.serve(closed_port())
    try:
        assert metrics.server is not None
        assert metrics.server._server is not None
        bound = {s.getsockname()[0] for s in metrics.server._server.sockets}
        assert bound == {"127.0.0.1"}
        assert scrape(metrics.server.port).status_code == 200
    finally:
        metrics.close()


def test_the_host_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECTOR_METRICS_HOST", "0.0.0.0")
    assert ProjectorSettings().projector_metrics_host == "0.0.0.0"


def test_a_scrape_gets_the_registry(server: MetricsServer) -> None:
    answer = scrape(server.port)
    assert answer.status_code == 200
    assert "probe_total 1.0" in answer.text
    assert answer.headers["content-type"].startswith("text/plain")


def test_a_client_that_sends_nothing_is_disconnected(server: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        assert closed_by_server(idle)


def test_a_client_that_never_finishes_its_request_is_disconnected(server: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line: never complete
        assert closed_by_server(slow)


def test_idle_connections_do_not_lock_a_scrape_out(registry: CollectorRegistry) -> None:
    # A long timeout: the idle connections stay until a new connection needs their place.
    server = MetricsServer(registry, request_timeout_s=GUARD_S, max_connections=4)
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(12)]
    try:
        for _ in range(3):
            assert scrape(server.port).status_code == 200
        # The oldest idle ones made room (at most max_connections - 1 are left waiting).
        assert sum(closed_by_server(c) for c in idle[:9]) == 9
    finally:
        for connection in idle:
            connection.close()
        server.close()


def test_a_request_head_over_the_limit_is_refused(server: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as large:
        large.sendall(b"GET /" + b"a" * (server.max_request_bytes + 10))
        large.settimeout(GUARD_S)
        assert large.recv(64).startswith(b"HTTP/1.1 400 ")


def test_other_methods_and_paths_are_refused(server: MetricsServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    assert httpx.post(f"{base}/metrics", timeout=GUARD_S).status_code == 405
    assert httpx.get(f"{base}/other", timeout=GUARD_S).status_code == 404


def test_a_port_in_use_is_an_error_at_start(registry: CollectorRegistry) -> None:
    first = MetricsServer(registry)
    port = first.start()
    try:
        with pytest.raises(OSError):
            MetricsServer(registry, port=port).start()
    finally:
        first.close()
