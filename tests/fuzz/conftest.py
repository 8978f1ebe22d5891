"""The API as the fuzzer meets it: uvicorn on a free port, wired to the session's embedded stores.

The app runs exactly as ``orders-api`` serves it (``create_app`` with its lifespan opening the
store clients from settings), in a thread with its own event loop, so the fuzzer talks real
HTTP to it. Admin endpoints are mounted (a token is configured) and fuzzed with that token.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.adapters.motor_document_store import MotorDocumentStore
from tests.conftest import unique

ADMIN_TOKEN = "fuzz-admin-token-0123456789"
# Reads with X-Consistency-Token wait for a projector that is not running here; the operator's
# READ_WAIT_MS_MAX bounds that wait (and the OpenAPI document says so).
READ_WAIT_MS_MAX = 50
START_TIMEOUT_S = 60


@dataclass
class FuzzStats:
    """What the fuzzer sent: requests per operation and answers per status."""

    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.by_operation.values())


_STATS = pytest.StashKey[FuzzStats]()


@pytest.fixture(scope="session")
def fuzz_stats(request: pytest.FixtureRequest) -> FuzzStats:
    return request.config.stash.setdefault(_STATS, FuzzStats())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    stats = terminalreporter.config.stash.get(_STATS, None)
    if stats is None or not stats.requests:
        return
    terminalreporter.write_sep("-", "API fuzzing (schemathesis)")
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(stats.by_status.items()))
    terminalreporter.write_line(
        f"{stats.requests} requests over {len(stats.by_operation)} operations; "
        f"answers by status: {statuses}"
    )


class _Server(uvicorn.Server):
    """uvicorn's server, signalling ``done`` once it is serving (or has given up starting)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.done.set()

    def serve_then_signal(self, listener: socket.socket) -> None:
        try:
            self.run(sockets=[listener])
        finally:
            self.done.set()


def fuzzed_settings(**stores: str) -> ApiSettings:
    """The API's settings under fuzzing: admin on, short read-your-writes waits."""
    return ApiSettings(
        admin_token=ADMIN_TOKEN,
        read_wait_ms_default=0,
        read_wait_ms_max=READ_WAIT_MS_MAX,
        projector_retire_grace_s=0,
        **stores,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    settings: ApiSettings


@pytest.fixture(scope="module")
def live_api(eventstore_uri: str, mongo_uri: str) -> Iterator[LiveApi]:
    """The API served by uvicorn on a free loopback port until the module's tests are done."""
    settings = fuzzed_settings(
        eventstore_uri=eventstore_uri,
        mongo_uri=mongo_uri,
        mongo_database=unique("fuzz").replace("-", "_")[:60],
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_config=None, server_header=False)
    server = _Server(config)
    thread = threading.Thread(target=server.serve_then_signal, args=(listener,), daemon=True)
    thread.start()
    try:
        server.done.wait(START_TIMEOUT_S)
        if not server.started:
            raise RuntimeError("the API did not start (see the log above)")
        yield LiveApi(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()
        _drop_database(settings)


def _drop_database(settings: ApiSettings) -> None:
    import asyncio

    async def drop() -> None:
        store = MotorDocumentStore(settings.mongo_uri, settings.mongo_database)
        try:
            for collection in await store.list_collections():
                await store.drop_collection(collection)
        finally:
            await store.close()

    asyncio.run(drop())
