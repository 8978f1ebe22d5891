"""The OpenAPI document shows every command with its examples and every error shape."""

from __future__ import annotations

from typing import Any

import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from tests.api.stubs import UnusedDocumentStore
from tests.api.support import serve
from tests.fakes.event_store import InMemoryEventStore

COMMANDS = [
    ("post", "/orders"),
    ("post", "/orders/{order_id}/items"),
    ("delete", "/orders/{order_id}/items/{sku}"),
    ("put", "/orders/{order_id}/shipping-address"),
    ("post", "/orders/{order_id}/place"),
    ("post", "/orders/{order_id}/payments"),
    ("post", "/orders/{order_id}/ship"),
    ("post", "/orders/{order_id}/cancel"),
]


@pytest.fixture(scope="module")
async def openapi() -> dict[str, Any]:
    app = create_app(
        ApiSettings(), event_store=InMemoryEventStore(), document_store=UnusedDocumentStore()
    )
    async with serve(app, []) as client:
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
        return document


@pytest.mark.parametrize(("method", "path"), COMMANDS)
def test_each_command_is_documented(openapi: dict[str, Any], method: str, path: str) -> None:
    operation = openapi["paths"][path][method]
    assert operation["description"] and "\n" not in operation["description"].strip()
    success = operation["responses"]["201" if path == "/orders" else "200"]
    assert {"ETag", "X-Consistency-Token"} <= set(success["headers"])
    for status in ("400", "409", "413", "422", "503"):
        content = operation["responses"][status]["content"]
        assert set(content) == {"application/problem+json"}
        problem = content["application/problem+json"]
        assert problem["example"]["status"] == int(status)
        assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    if path != "/orders":
        assert {"404", "412"} <= set(operation["responses"])
        parameters = {p["name"] for p in operation["parameters"]}
        assert {"If-Match", "Idempotency-Key"} <= parameters


def test_request_bodies_carry_examples(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for name in ("CreateOrderBody", "AddItemBody", "ChangeShippingAddressBody", "CommandAccepted"):
        assert schemas[name]["examples"], name


def test_the_rule_violation_example_names_a_rule(openapi: dict[str, Any]) -> None:
    conflict = openapi["paths"]["/orders/{order_id}/place"]["post"]["responses"]["409"]
    assert conflict["content"]["application/problem+json"]["example"]["rule"]
