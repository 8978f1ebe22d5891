"""Stores for the operations tests: the session's servers, a fresh MongoDB database per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from shared.esdb_event_store import EsdbEventStore
from shared.motor_document_store import MotorDocumentStore


@pytest.fixture
async def event_store(eventstore_uri: str) -> AsyncIterator[EsdbEventStore]:
    store = EsdbEventStore(eventstore_uri)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def document_store(
    mongo_uri: str, mongo_database_name: str
) -> AsyncIterator[MotorDocumentStore]:
    store = MotorDocumentStore(mongo_uri, mongo_database_name)
    try:
        yield store
    finally:
        for collection in await store.list_collections():
            await store.drop_collection(collection)
        await store.close()


@pytest.fixture
def admin_token() -> str:
    """A token no log line or body may ever show."""
    return f"ops-token-{uuid.uuid4().hex}"
