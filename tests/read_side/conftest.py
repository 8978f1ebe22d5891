"""Fixtures of the read side's tests: the observed watcher and the query routes over HTTP (the
document store on a database of the test's own comes from the root conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from read_side.bootstrap import build_query_bus
from read_side.http import router
from shared.ports.document_store import DocumentStore
from shared.web.problem_details import install_problem_handlers
from tests.read_side.support import ObservedWatcher


@pytest.fixture
async def watcher(document_store: DocumentStore) -> AsyncIterator[ObservedWatcher]:
    watcher = ObservedWatcher(document_store)
    yield watcher
    await watcher.close()


@pytest.fixture
async def client(
    document_store: DocumentStore, watcher: ObservedWatcher
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.state.query_bus = build_query_bus(document_store, watcher=watcher)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
