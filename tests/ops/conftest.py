"""Stores for the operations tests: the session's servers, a fresh MongoDB database per test."""

from __future__ import annotations

import uuid

import pytest

from shared.adapters.esdb_event_store import EsdbEventStore


@pytest.fixture
def event_store(esdb_event_store: EsdbEventStore) -> EsdbEventStore:
    return esdb_event_store


@pytest.fixture
def admin_token() -> str:
    """A token no log line or body may ever show."""
    return f"ops-token-{uuid.uuid4().hex}"
