"""The handler tests' store (one that can let another writer in between load and append) and
the handler over it."""

from __future__ import annotations

import pytest

from tests.write_side.support import Handle, InterferingStore, handler_over


@pytest.fixture
def store() -> InterferingStore:
    return InterferingStore()


@pytest.fixture
def handle(store: InterferingStore) -> Handle:
    return handler_over(store, max_backoff_s=0.01)
