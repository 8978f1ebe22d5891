"""Fixtures of the read side's tests: the observed watcher (the document store on a database of
the test's own comes from the root conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.ports.document_store import DocumentStore
from tests.read_side.support import ObservedWatcher


@pytest.fixture
async def watcher(document_store: DocumentStore) -> AsyncIterator[ObservedWatcher]:
    watcher = ObservedWatcher(document_store)
    yield watcher
    await watcher.close()
