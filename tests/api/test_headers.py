"""Request headers and JSON numbers as RFC 9110 and JSON Schema define them.

- Several ``If-Match`` field lines are one list, the same as their values in one line.
- The OpenAPI document gives the formats of If-Match, Idempotency-Key and X-Consistency-Token,
  and the API accepts exactly the values those formats allow (one definition serves both).
- A JSON integer written with a zero fraction (``53893.0``) is an integer; ``53893.5`` is not.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.ports.event_store import EventStore
from shared.web.consistency_token import position_of
from shared.web.problem_details import ProblemError
from tests.api.stubs import UnusedDocumentStore
from tests.api.support import create, data, stream_of
from tests.fakes.event_store import InMemoryEventStore
from tests.samples import ADDRESS
from write_side.http.preconditions import checked_idempotency_key, expected_version_from_if_match

MUG = {"sku": "SKU-RED-MUG", "quantity": 2, "unit_price": 1250}


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (['W/"0"', '"0"'], 200),  # the second line pins version 0
        (['"opaque"', '"0"'], 200),
        (['"0"', '"1"'], 400),  # two versions, one per line
        (['"7"', '"0"'], 400),
        (['"7"', '"7"'], 412),
    ],
)
async def test_if_match_lines_are_one_list(
    client: httpx.AsyncClient, lines: list[str], status: int
) -> None:
    one_line = await create(client)
    several_lines = await create(client)
    joined = await client.post(
        f"/orders/{one_line['order_id']}/items", json=MUG, headers={"If-Match": ", ".join(lines)}
    )
    separate = await client.post(
        f"/orders/{several_lines['order_id']}/items",
        json=MUG,
        headers=[("If-Match", line) for line in lines],
    )
    assert (joined.status_code, separate.status_code) == (status, status), separate.text


def test_if_match_lines_are_parsed_as_one_list() -> None:
    assert expected_version_from_if_match(['W/"3"', '"3"']) == 3
    assert expected_version_from_if_match([]) is None
    with pytest.raises(ProblemError) as refused:
        expected_version_from_if_match(['"1"', '"2"'])
    assert refused.value.status == 400


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(
        ApiSettings(read_wait_ms_max=750, read_wait_ms_default=0),
        event_store=InMemoryEventStore(),
        document_store=UnusedDocumentStore(),
    )
    return app.openapi()


def _header_schema(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    parameters = document["paths"][path][method]["parameters"]
    [schema] = [p["schema"] for p in parameters if p["in"] == "header" and p["name"] == name]
    assert schema["type"] == "string" and "pattern" in schema and "maxLength" in schema
    return dict(schema)


def _accepted(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ProblemError as error:
        return error.status != 400
    return True


IDEMPOTENCY_KEYS = ["0123456789abcdef", "a" * 255, "a" * 256, "0123456789abcde", "k" * 15 + " "]
IDEMPOTENCY_KEYS += ["5d0c3a9e-8f1b-4c47-a1d2-9e0b7f6c3a21", "key/with+all=the:chars~._-0"]
IF_MATCHES = ["*", '"0"', '"42"', '"9223372036854775807"', "0", '"01"', "3", '"3', ""]
TOKENS = ["0", "1", "184467", "9" * 19, "9" * 20, "01", "-1", "1.5", "", "abc", "1e3"]


@pytest.mark.parametrize("value", IDEMPOTENCY_KEYS)
def test_idempotency_key_format_is_what_the_api_accepts(
    document: dict[str, Any], value: str
) -> None:
    schema = _header_schema(document, "/orders", "post", "Idempotency-Key")
    valid = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert valid == _accepted(checked_idempotency_key, value)


@pytest.mark.parametrize("value", IF_MATCHES)
def test_if_match_format_is_accepted_by_the_api(document: dict[str, Any], value: str) -> None:
    schema = _header_schema(document, "/orders/{order_id}/place", "post", "If-Match")
    if jsonschema.Draft202012Validator(schema).is_valid(value):
        # Valid by the document: a version pin or none, never a 400 nor a 412 by format.
        assert _accepted(expected_version_from_if_match, value)
        expected_version_from_if_match(value)


@pytest.mark.parametrize("value", TOKENS)
def test_consistency_token_format_is_what_the_api_accepts(
    document: dict[str, Any], value: str
) -> None:
    schema = _header_schema(document, "/orders/{order_id}", "get", "X-Consistency-Token")
    valid = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert valid == (position_of(value) is not None)


def test_command_response_headers_are_documented_with_their_formats(
    document: dict[str, Any],
) -> None:
    headers = document["paths"]["/orders/{order_id}/place"]["post"]["responses"]["200"]["headers"]
    etag = jsonschema.Draft202012Validator(headers["ETag"]["schema"])
    token = jsonschema.Draft202012Validator(headers["X-Consistency-Token"]["schema"])
    assert etag.is_valid('"3"') and not etag.is_valid("3")
    assert token.is_valid("18446") and not token.is_valid('"18446"')


def test_wait_ms_is_documented_with_the_operators_bound(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/orders/{order_id}"]["get"]["parameters"]
    [wait] = [p["schema"] for p in parameters if p["name"] == "wait_ms"]
    assert (wait["type"], wait["minimum"], wait["maximum"]) == ("integer", 0, 750)


async def test_integers_written_with_a_zero_fraction_are_integers(
    client: httpx.AsyncClient, event_store: EventStore
) -> None:
    created = await client.post(
        "/orders",
        json={
            "customer_id": "cust-floats",
            "currency": "EUR",
            "shipping_address": ADDRESS,
            "items": [{"sku": "SKU-A", "quantity": 3.0, "unit_price": 53893.0}],
        },
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    added = await client.post(
        f"/orders/{order_id}/items", json={"sku": "SKU-B", "quantity": 1.0, "unit_price": 0.0}
    )
    assert added.status_code == 200, added.text
    added_items = [
        data(event) for event in await stream_of(event_store, order_id) if event.type == "ItemAdded"
    ]
    stored = [(item["sku"], item["quantity"], item["unit_price"]) for item in added_items]
    assert stored == [("SKU-A", 3, 53893), ("SKU-B", 1, 0)]
    assert all(type(value) is int for _, *numbers in stored for value in numbers)
    assert await client.post(f"/orders/{order_id}/place")
    paid = await client.post(f"/orders/{order_id}/payments", json={"amount": 161679.0})
    assert paid.status_code == 200, paid.text


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({**MUG, "unit_price": 53893.5}, "body.unit_price"),
        ({**MUG, "quantity": 2.000001}, "body.quantity"),
        ({**MUG, "unit_price": 1e300}, "body.unit_price"),
        ({**MUG, "quantity": 1e300}, "body.quantity"),
        ({**MUG, "quantity": -1.0}, "body.quantity"),
        ({**MUG, "quantity": True}, "body.quantity"),
    ],
)
async def test_fractions_and_out_of_range_numbers_are_422(
    client: httpx.AsyncClient, item: dict[str, Any], field: str
) -> None:
    order = await create(client)
    response = await client.post(f"/orders/{order['order_id']}/items", json=item)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]
