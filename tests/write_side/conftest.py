"""The handler tests' store (one that can let another writer in between load and append) and
the handler over it."""

from __future__ import annotations

import pytest

from tests.write_side.support import InterferingStore
from write_side.handlers import OrderCommandHandler
from write_side.repository import OrderRepository


@pytest.fixture
def store() -> InterferingStore:
    return InterferingStore()


@pytest.fixture
def handle(store: InterferingStore) -> OrderCommandHandler:
    return OrderCommandHandler(OrderRepository(store), max_backoff_s=0.01)
