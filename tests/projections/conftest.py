"""Fixtures for the projection tests: a document store on a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.document_store import DocumentStore
from shared.motor_document_store import MotorDocumentStore


@pytest.fixture
async def store(mongo_uri: str, mongo_database_name: str) -> AsyncIterator[DocumentStore]:
    store = MotorDocumentStore(mongo_uri, mongo_database_name)
    try:
        yield store
    finally:
        for name in await store.list_collections():
            await store.drop_collection(name)
        await store.close()
