"""Fixtures for the projection tests: a document store on a database of its own."""

from __future__ import annotations

import pytest

from shared.adapters.motor_document_store import MotorDocumentStore
from shared.ports.document_store import DocumentStore


@pytest.fixture
def store(document_store: MotorDocumentStore) -> DocumentStore:
    return document_store
