"""Every operation in the OpenAPI document (commands, queries, projections, health, metrics,
admin) has a summary and description, examples for its request body and success responses, and
problem+json (with an example of each problem type) for every error it documents."""

from __future__ import annotations

from typing import Any

import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from tests.api.stubs import UnusedDocumentStore
from tests.fakes.event_store import InMemoryEventStore
from tests.ops.support import api

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
EXPECTED = {
    ("post", "/orders"),
    ("get", "/orders/{order_id}"),
    ("get", "/customers/{customer_id}/orders"),
    ("get", "/projections"),
    ("get", "/projections/{name}"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("post", "/admin/projections/{name}/rebuild"),
    ("get", "/admin/projections/{name}/rebuild"),
    ("get", "/admin/dead-letters"),
    ("post", "/admin/projections/{name}/dead-letters/park"),
}


@pytest.fixture(scope="module")
async def document() -> dict[str, Any]:
    stores = InMemoryEventStore(), UnusedDocumentStore()
    async with api(*stores, admin_token="docs-token-0123456789") as (_, client):
        page = await client.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        loaded: dict[str, Any] = (await client.get("/openapi.json")).json()
        return loaded


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def has_example(media: dict[str, Any]) -> bool:
    return bool(media.get("example") is not None or media.get("examples"))


def test_every_area_is_documented(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    assert documented >= EXPECTED
    assert len(documented) >= 20


def test_every_operation_is_complete(document: dict[str, Any]) -> None:
    problems: list[str] = []
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        if not operation.get("summary") or not operation.get("description"):
            problems.append(f"{where}: no summary or description")
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not has_example(media):
                problems.append(f"{where}: request body {media_type} has no example")
        responses = operation["responses"]
        if not any(status.startswith("2") for status in responses):
            problems.append(f"{where}: no success response")
        if "500" not in responses:
            problems.append(f"{where}: 500 not documented")
        for status, response in responses.items():
            content = response.get("content", {})
            if status.startswith("2"):
                if not content or not all(has_example(media) for media in content.values()):
                    problems.append(f"{where}: {status} has no example")
            elif status[:1] in "45":
                if set(content) != {"application/problem+json"}:
                    problems.append(f"{where}: {status} is {sorted(content)}, not problem+json")
                    continue
                media = content["application/problem+json"]
                if media.get("schema") != PROBLEM_REF:
                    problems.append(f"{where}: {status} schema is not Problem")
                examples = [example["value"] for example in media.get("examples", {}).values()]
                if not examples or any(body.get("status") != int(status) for body in examples):
                    problems.append(f"{where}: {status} has no problem examples of its status")
    assert not problems, "\n".join(problems)


def test_admin_operations_declare_the_bearer_scheme(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["AdminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["AdminToken"]["description"],
    }
    for _, path, operation in operations(document):
        if path.startswith("/admin"):
            assert operation["security"] == [{"AdminToken": []}]
            assert "401" in operation["responses"]
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        else:
            assert "security" not in operation


def test_fastapi_validation_schemas_are_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ValidationError" not in document["components"]["schemas"]


def test_without_admin_token_the_document_has_no_admin_paths() -> None:
    app = create_app(
        ApiSettings(), event_store=InMemoryEventStore(), document_store=UnusedDocumentStore()
    )
    paths = app.openapi()["paths"]
    assert not [path for path in paths if path.startswith("/admin")]
    assert "securitySchemes" not in app.openapi().get("components", {})
