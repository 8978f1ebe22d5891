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
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.ports.errors import StoreUnavailable
from shared.process.logging_setup import JsonFormatter, TextFormatter
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


def _wrong(secret: str) -> str:
    """A guess of the same length that differs in its last character."""
    return secret[:-1] + ("0" if secret[-1] != "0" else "1")


def _probes(text: str) -> list[tuple[str, str, dict[str, object] | None]]:
    """Requests that put ``text`` where a client can: path, query, body field name and value."""
    return [
        ("GET", f"/nope/{text}", None),
        ("GET", f"/orders/{text}", None),
        ("GET", f"/projections/{text}", None),
        ("GET", f"/customers/{text}/orders?cursor={text}", None),
        ("POST", "/orders", {text: 1}),
        ("POST", f"/admin/projections/{text}/rebuild", None),
    ]


async def test_a_right_guess_is_answered_like_a_wrong_one(
    event_store: EsdbEventStore, document_store: MotorDocumentStore, admin_token: str
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    # The password is registered as a secret; the stores themselves are the fixtures.
    uri = f"esdb://admin:{password}@127.0.0.1:{closed_port()}?Tls=false"
    same_id = {"X-Correlation-ID": "probe-1"}  # so whole bodies compare
    async with api(event_store, document_store, admin_token=admin_token, eventstore_uri=uri) as (
        _,
        client,
    ):
        for secret in (admin_token, password):
            guess = _wrong(secret)
            for (method, right_url, right_body), (_, wrong_url, wrong_body) in zip(
                _probes(secret), _probes(guess), strict=True
            ):
                right = await client.request(method, right_url, json=right_body, headers=same_id)
                wrong = await client.request(method, wrong_url, json=wrong_body, headers=same_id)
                assert right.status_code == wrong.status_code, right_url
                assert "***" not in right.text, right.text
                # Text the client sent comes back as sent (or not at all), secret or not.
                assert right.text.replace(secret, guess) == wrong.text, (right.text, wrong.text)
                if right.status_code >= 400:
                    assert right.json()["instance"] == "urn:correlation-id:probe-1"


async def test_a_short_store_password_does_not_mask_bodies(
    event_store: EsdbEventStore, document_store: MotorDocumentStore
) -> None:
    uri = f"mongodb://app:1@127.0.0.1:{closed_port()}/?directConnection=true"
    async with api(event_store, document_store, mongo_uri=uri) as (_, client):
        one = await client.get("/nope/1", headers={"X-Correlation-ID": "short-1"})
        two = await client.get("/nope/2", headers={"X-Correlation-ID": "short-1"})
        invalid = await client.get("/customers/c-1/orders?limit=1000")
    assert one.status_code == two.status_code == 404
    assert one.text == two.text and "***" not in one.text
    assert invalid.status_code == 422 and "***" not in invalid.text
    assert "1" in invalid.json()["detail"]  # "less than or equal to 100"
