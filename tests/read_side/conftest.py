"""Fixtures of the read side's tests: a document store on a fresh database (random name, so no
clean-up is needed and a real server that is not empty works too) and the observed watcher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.document_store import DocumentStore
from shared.motor_document_store import MotorDocumentStore
from tests.read_side.support import ObservedWatcher


@pytest.fixture
async def document_store(mongo_uri: str, mongo_database_name: str) -> AsyncIterator[DocumentStore]:
    store = MotorDocumentStore(mongo_uri, mongo_database_name)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def watcher(document_store: DocumentStore) -> AsyncIterator[ObservedWatcher]:
    watcher = ObservedWatcher(document_store)
    yield watcher
    await watcher.close()
