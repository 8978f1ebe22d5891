"""The OpenAPI document shows every command with its examples and every error shape, and names
only rules the domain has."""

from __future__ import annotations

from typing import Any

import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.web.problem_details import PROBLEM_TYPE_BASE
from tests.api.stubs import UnusedDocumentStore
from tests.api.support import new_order, serve
from tests.fakes.event_store import InMemoryEventStore
from write_side.domain.rules import Rule

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
        assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert problem["examples"]
        for example in problem["examples"].values():
            assert example["value"]["status"] == int(status)
    if path != "/orders":
        assert {"404", "412"} <= set(operation["responses"])
        parameters = {p["name"] for p in operation["parameters"]}
        assert {"If-Match", "Idempotency-Key"} <= parameters


def test_request_bodies_carry_examples(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for name in ("CreateOrderBody", "AddItemBody", "ChangeShippingAddressBody", "CommandAccepted"):
        assert schemas[name]["examples"], name


def _rule_violations(openapi: dict[str, Any], method: str, path: str) -> list[dict[str, Any]]:
    conflict = openapi["paths"][path][method]["responses"]["409"]
    examples = conflict["content"]["application/problem+json"]["examples"].values()
    return [
        example["value"]
        for example in examples
        if example["value"]["type"] == PROBLEM_TYPE_BASE + "rule-violation"
    ]


@pytest.mark.parametrize(("method", "path"), COMMANDS)
def test_a_rule_violation_is_documented_with_a_rule_of_the_domain(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    [example] = _rule_violations(openapi, method, path)
    assert example["title"] == "Business rule violated"
    assert example["rule"] in {rule.value for rule in Rule}
    description = openapi["paths"][path][method]["responses"]["409"]["description"]
    assert all(f"`{rule.value}`" in description for rule in Rule)


def test_the_problem_schema_lists_every_rule_name_and_no_other(openapi: dict[str, Any]) -> None:
    rule = openapi["components"]["schemas"]["Problem"]["properties"]["rule"]
    [names] = [branch["enum"] for branch in rule["anyOf"] if branch.get("type") == "string"]
    assert names == [rule.value for rule in Rule]


async def test_the_rule_an_api_answer_names_is_the_one_the_domain_broke(
    openapi: dict[str, Any],
) -> None:
    app = create_app(
        ApiSettings(), event_store=InMemoryEventStore(), document_store=UnusedDocumentStore()
    )
    async with serve(app, []) as client:
        created = await client.post("/orders", json=new_order())
        placed = await client.post(f"/orders/{created.json()['order_id']}/place")
    assert placed.status_code == 409
    [documented] = _rule_violations(openapi, "post", "/orders/{order_id}/place")
    sent = placed.json()
    assert (sent["type"], sent["title"]) == (documented["type"], documented["title"])
    assert sent["rule"] == Rule.PLACE_REQUIRES_ITEMS
