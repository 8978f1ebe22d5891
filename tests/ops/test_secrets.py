"""Secrets (ADMIN_TOKEN, passwords inside store URIs) never appear in logs or response bodies.

Log records are checked twice: raw (nothing of ours even hands a secret to logging) and as the
process would print them (through both of the project's formatters, which redact)."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.errors import StoreUnavailable
from shared.esdb_event_store import EsdbEventStore
from shared.logging_setup import JsonFormatter, TextFormatter
from shared.motor_document_store import MotorDocumentStore
from tests.ops.support import api, bearer, closed_port, create_order
from tests.ops.test_health import unreachable_mongo

OURS = ("orders_api", "shared", "read_side", "write_side", "projector")


def assert_not_logged(records: list[logging.LogRecord], *secrets: str) -> None:
    for record in records:
        record.correlation_id = getattr(record, "correlation_id", None)
        printed = TextFormatter().format(record) + JsonFormatter().format(record)
        for secret in secrets:
            assert secret not in printed, printed
            if record.name.startswith(OURS):
                assert secret not in record.getMessage() + repr(record.args), record.getMessage()


def assert_not_answered(responses: list[httpx.Response], *secrets: str) -> None:
    for response in responses:
        shown = response.text + repr(dict(response.headers))
        for secret in secrets:
            assert secret not in shown, shown


async def test_the_admin_token_is_never_logged_or_answered(
    event_store: EsdbEventStore,
    document_store: MotorDocumentStore,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Response] = []
    async with api(event_store, document_store, seen, admin_token=admin_token) as (_, client):
        order_id, _, _ = await create_order(client)
        for headers in (bearer(admin_token), bearer(admin_token + "0"), bearer(admin_token[1:])):
            await client.get("/admin/dead-letters", headers=headers)
            await client.post("/admin/projections/nope/rebuild", headers=headers)
            await client.post("/admin/projections/order_views/dead-letters/park", headers=headers)
            await client.get(f"/orders/{order_id}", headers=headers)
        # A token in places where it does not belong still must not be echoed.
        await client.get(f"/customers/c-1/orders?cursor={admin_token}")
        await client.post("/orders", json={"customer_id": admin_token}, headers=bearer("x"))
        await client.get("/metrics")
        await client.get("/openapi.json")
    assert len(seen) == 18
    assert_not_answered(seen, admin_token)
    assert_not_logged(caplog.records, admin_token)


async def test_uri_passwords_stay_out_of_start_up_errors_and_logs(
    eventstore_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = f"pw-{uuid.uuid4().hex}"
    settings = ApiSettings(
        eventstore_uri=eventstore_uri,
        mongo_uri=f"mongodb://opsuser:{password}@127.0.0.1:{closed_port()}/?directConnection=true",
        startup_wait_s=0.5,
    )
    app = create_app(settings)
    with pytest.raises(StoreUnavailable) as raised:
        async with app.router.lifespan_context(app):
            raise AssertionError("the lifespan should not start without MongoDB")
    assert "mongodb at mongodb://***@127.0.0.1" in str(raised.value)
    assert password not in str(raised.value) + repr(raised.value.args)
    gave_up = [r for r in caplog.records if "still unreachable" in r.getMessage()]
    assert gave_up and "mongodb at mongodb://***@127.0.0.1" in gave_up[0].getMessage()
    assert_not_logged(caplog.records, password)


async def test_uri_passwords_stay_out_of_error_bodies(
    event_store: EsdbEventStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = f"pw-{uuid.uuid4().hex}"
    documents = unreachable_mongo(password)
    seen: list[httpx.Response] = []
    try:
        async with api(event_store, documents, seen) as (_, client):
            ready = await client.get("/health/ready")
            projections = await client.get("/projections")
            summary = await client.get("/customers/c-1/summary")
            metrics = await client.get("/metrics")
    finally:
        await documents.close()
    assert ready.status_code == projections.status_code == summary.status_code == 503
    assert metrics.status_code == 200
    assert_not_answered(seen, password)
    assert_not_logged(caplog.records, password)


def test_secrets_are_registered_when_the_app_is_built() -> None:
    token = f"tok-{uuid.uuid4().hex}"
    password = f"pw-{uuid.uuid4().hex}"
    create_app(
        ApiSettings(
            admin_token=token,
            eventstore_uri=f"esdb://admin:{password}@127.0.0.1:{closed_port()}?Tls=false",
        )
    )
    record = logging.LogRecord("x", logging.INFO, "", 0, "%s and %s", (token, password), None)
    record.correlation_id = None
    printed = TextFormatter().format(record) + JsonFormatter().format(record)
    assert token not in printed and password not in printed
