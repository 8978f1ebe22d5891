"""Admin endpoints: no token / wrong token / right token / admin disabled, on every one of them."""

from __future__ import annotations

import logging

import httpx
import pytest

from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from tests.ops.support import api, bearer

ADMIN_CALLS = [
    ("post", "/admin/projections/order_views/rebuild"),
    ("get", "/admin/projections/order_views/rebuild"),
    ("get", "/admin/dead-letters"),
    ("post", "/admin/projections/order_views/dead-letters/park"),
    ("post", "/admin/projections/no_such_projection/rebuild"),  # 401 first: names stay secret
]


async def call(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: object
) -> httpx.Response:
    return await client.request(method.upper(), path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
async def test_without_a_token_every_admin_call_is_401(
    event_store: EsdbEventStore,
    document_store: MotorDocumentStore,
    admin_token: str,
    method: str,
    path: str,
) -> None:
    async with api(event_store, document_store, admin_token=admin_token) as (_, client):
        missing = await call(client, method, path)
        wrong = await call(client, method, path, headers=bearer(admin_token + "x"))
        basic = await call(client, method, path, headers={"Authorization": f"Basic {admin_token}"})
        prefix = await call(client, method, path, headers=bearer(admin_token[:-1]))
    for response in (missing, wrong, basic, prefix):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["title"] == "Unauthorized"
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert "error=" not in missing.headers["www-authenticate"]


async def test_the_right_token_is_let_in(
    event_store: EsdbEventStore, document_store: MotorDocumentStore, admin_token: str
) -> None:
    async with api(event_store, document_store, admin_token=admin_token) as (_, client):
        letters = await client.get("/admin/dead-letters", headers=bearer(admin_token))
        status = await client.get(
            "/admin/projections/order_views/rebuild", headers=bearer(admin_token)
        )
        unknown = await client.post(
            "/admin/projections/no_such_projection/rebuild", headers=bearer(admin_token)
        )
        nothing = await client.post(
            "/admin/projections/order_views/dead-letters/park", headers=bearer(admin_token)
        )
    assert letters.status_code == 200 and letters.json() == {"dead_letters": []}
    assert status.status_code == 200 and status.json()["job"] is None
    assert status.json()["status"]["name"] == "order_views"
    assert unknown.status_code == 404
    assert unknown.json()["known"] == ["order_views", "customer_summaries", "daily_sales"]
    assert nothing.status_code == 409 and nothing.json()["title"] == "Nothing to park"


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
async def test_without_admin_token_the_admin_endpoints_do_not_exist(
    event_store: EsdbEventStore,
    document_store: MotorDocumentStore,
    admin_token: str,
    method: str,
    path: str,
) -> None:
    async with api(event_store, document_store) as (app, client):
        response = await call(client, method, path, headers=bearer(admin_token))
        unknown_path = await call(client, method, "/no/such/path")
        docs = (await client.get("/openapi.json")).json()
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    expected = unknown_path.json()
    assert {k: v for k, v in response.json().items() if k != "instance"} == {
        k: v for k, v in expected.items() if k != "instance"
    }
    assert not [p for p in docs["paths"] if p.startswith("/admin")]
    assert app.state.settings.admin_token is None


async def test_a_refused_attempt_is_logged_without_the_token(
    event_store: EsdbEventStore,
    document_store: MotorDocumentStore,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-token-" + admin_token[::-1]
    async with api(event_store, document_store, admin_token=admin_token) as (_, client):
        await client.get("/admin/dead-letters", headers=bearer(wrong))
        await client.get("/admin/dead-letters")
        await client.get("/admin/dead-letters", headers=bearer(admin_token))
    refusals = [r for r in caplog.records if "admin request refused" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.WARNING]
    assert "wrong token" in refusals[0].getMessage()
    assert "GET /admin/dead-letters" in refusals[0].getMessage()
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        assert admin_token not in text and wrong not in text
