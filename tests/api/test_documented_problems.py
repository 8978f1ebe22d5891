"""Every problem the OpenAPI document lists is one the API really answers.

For each problem type the document lists (under an operation's error status, or among the
responses of no operation), a request provokes it, and the answer must have that status,
``application/problem+json``, that type and the documented title, carry the headers its
catalogue entry promises (e.g. Retry-After), and come from an operation that documents it under
that status. A documented type nobody can provoke, or a provocation of
a type the document does not list, fails the test; so does an answer of another type.

The table is keyed by the type's name and reads what is expected from the document, not from
the catalogue that builds it, so it also judges a document built some other way. The API runs
in-process over the in-memory event store, or over the session's embedded stores where a
problem needs real data (a running rebuild, a waiting read); the server's own refusals (too
many connections or requests, a body too slow) come from ``orders_api.server`` serving the app
on a local port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from orders_api.app import create_app
from orders_api.problems import CATALOGUE
from orders_api.server import build_server
from orders_api.settings import ApiSettings
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import (
    EventStore,
    RecordedEvent,
)
from shared.web.problem_details import PROBLEM_JSON, PROBLEM_TYPE_BASE
from tests.api.stubs import HotStream, UnavailableEventStore, UnusedDocumentStore
from tests.api.support import new_order
from tests.fakes.event_store import InMemoryEventStore
from tests.ops.support import bearer, closed_port, samples
from tests.waiting import WAIT_S, wait_until

ADMIN_TOKEN = "problems-token-0123456789"
JSON = {"content-type": "application/json"}
ON_NO_OPERATION = None  # an answer to a path or method the API does not have


@dataclass(frozen=True)
class Answer:
    """What came back, and the documented operation (method, path) that answered it."""

    operation: tuple[str, str] | None
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: dict[str, Any]


def answer(operation: tuple[str, str] | None, response: httpx.Response) -> Answer:
    headers = {name.lower(): value for name, value in response.headers.items()}
    body = response.json() if response.content else {}
    return Answer(operation, response.status_code, headers, body)


# --- the document -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Documented:
    """One documented problem: where, under which status, with which example body."""

    operation: tuple[str, str] | None
    status: str
    example: dict[str, Any]


def _examples(response: dict[str, Any]) -> list[dict[str, Any]]:
    media = response.get("content", {}).get(PROBLEM_JSON, {})
    found = [example["value"] for example in media.get("examples", {}).values()]
    return found + ([media["example"]] if "example" in media else [])


def documented_problems(document: dict[str, Any]) -> dict[str, list[Documented]]:
    """Every problem type the document lists (by name), with each place it is listed."""
    places: list[tuple[tuple[str, str] | None, str, dict[str, Any]]] = [
        ((method, path), status, response)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
    ]
    places += [
        (ON_NO_OPERATION, str(example["status"]), response)
        for response in document.get("components", {}).get("responses", {}).values()
        for example in _examples(response)[:1]
    ]
    listed: dict[str, list[Documented]] = {}
    for operation, status, response in places:
        for example in _examples(response):
            name = str(example["type"]).removeprefix(PROBLEM_TYPE_BASE)
            listed.setdefault(name, []).append(Documented(operation, status, example))
    return listed


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN),
        event_store=InMemoryEventStore(),
        document_store=UnusedDocumentStore(),
    )
    return app.openapi()


# --- ways to reach the API --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def api(
    events: EventStore | None = None, documents: DocumentStore | None = None, **settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app over the given stores (in-memory events, no MongoDB by default), its lifespan
    running; an unexpected error comes back as the app's answer, not as an exception."""
    app = create_app(
        ApiSettings(**settings),
        event_store=events or InMemoryEventStore(),
        document_store=documents or UnusedDocumentStore(),
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://orders.test", timeout=WAIT_S) as c,
    ):
        yield app, c


@contextlib.asynccontextmanager
async def served(**settings: Any) -> AsyncIterator[int]:
    """The app behind the ``orders-api`` server (with its connection and load limits) on a
    local port, in this process; yields the port."""
    port = closed_port()
    api_settings = ApiSettings(api_port=port, **settings)
    app = create_app(
        api_settings, event_store=InMemoryEventStore(), document_store=UnusedDocumentStore()
    )
    server = build_server(app, api_settings)
    loop = asyncio.get_running_loop()
    loop_handler = loop.get_exception_handler()  # the server installs its own
    serving = asyncio.create_task(server.serve())

    async def listening() -> bool:
        assert not serving.done(), "the server stopped"
        return bool(server.started)

    try:
        await wait_until(listening, "the server to listen")
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT_S)
        loop.set_exception_handler(loop_handler)


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """One response: status, headers (lower case), body (by Content-Length)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT_S)
        status_line, *lines = head.decode("latin-1").strip().split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines)
        }
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), WAIT_S)
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def connected(port: int) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connection = Connection(reader, writer)
    try:
        yield connection
    finally:
        connection.close()


async def raw_answer(operation: tuple[str, str], connection: Connection) -> Answer:
    status, headers, body = await connection.response()
    return Answer(operation, status, headers, json.loads(body))


# --- one provocation per documented problem ---------------------------------------------------

# A provocation gets the document store to use: MongoDB (the session's embedded one) for those
# registered with ``on_mongodb``, else one that is never reached.
Provocation = Callable[[DocumentStore], Awaitable[Answer]]
PROVOCATIONS: dict[str, Provocation] = {}
ON_MONGODB: set[str] = set()


def provokes(name: str, *, on_mongodb: bool = False) -> Callable[[Provocation], Provocation]:
    def register(provocation: Provocation) -> Provocation:
        assert name not in PROVOCATIONS, name
        PROVOCATIONS[name] = provocation
        if on_mongodb:
            ON_MONGODB.add(name)
        return provocation

    return register


def new_id() -> str:
    return str(uuid.uuid4())


async def created(client: httpx.AsyncClient) -> str:
    response = await client.post("/orders", json=new_order())
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


@provokes("malformed-json")
async def _malformed_json(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.post("/orders", content=b'{"customer_id": ', headers=JSON)
    return answer(("post", "/orders"), response)


@provokes("http-error")
async def _unreadable_body(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        # Not UTF-8: no JSON document at all, so not a JSON syntax error either.
        response = await client.post("/orders", content=b'{"customer_id": "\xff"}', headers=JSON)
    return answer(("post", "/orders"), response)


@provokes("invalid-idempotency-key")
async def _invalid_idempotency_key(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.post(
            "/orders", json=new_order(), headers={"Idempotency-Key": "short"}
        )
    return answer(("post", "/orders"), response)


@provokes("malformed-if-match")
async def _malformed_if_match(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        order_id = await created(client)
        response = await client.post(f"/orders/{order_id}/place", headers={"If-Match": "3"})
    return answer(("post", "/orders/{order_id}/place"), response)


@provokes("validation-failed")
async def _validation_failed(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.post("/orders", json={"currency": "EUR"})
    return answer(("post", "/orders"), response)


@provokes("content-too-large")
async def _content_too_large(_: DocumentStore) -> Answer:
    async with api() as (app, client):
        limit = app.state.settings.max_body_bytes
        response = await client.post("/orders", json=new_order(customer_id="c" * limit))
    return answer(("post", "/orders"), response)


@provokes("order-not-found")
async def _order_not_found(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.post(f"/orders/{new_id()}/place")
    return answer(("post", "/orders/{order_id}/place"), response)


@provokes("rule-violation")
async def _rule_violation(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        order_id = await created(client)
        response = await client.post(f"/orders/{order_id}/place")  # an order without items
    return answer(("post", "/orders/{order_id}/place"), response)


@provokes("version-mismatch")
async def _version_mismatch(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        order_id = await created(client)  # version 0
        response = await client.post(f"/orders/{order_id}/place", headers={"If-Match": '"7"'})
    return answer(("post", "/orders/{order_id}/place"), response)


@provokes("concurrent-modification")
async def _concurrent_modification(_: DocumentStore) -> Answer:
    async with api(HotStream(), command_max_attempts=2) as (_app, client):
        order_id = await created(client)
        item = {"sku": "MUG-RED", "quantity": 1, "unit_price": 1250}
        response = await client.post(f"/orders/{order_id}/items", json=item)
    return answer(("post", "/orders/{order_id}/items"), response)


class BrokenEventStore(InMemoryEventStore):
    """A bug behind the port: every read fails with an error nobody maps."""

    async def read_stream(self, stream: str) -> list[RecordedEvent]:
        raise RuntimeError("a bug in the event store adapter")


@provokes("internal-error")
async def _internal_error(_: DocumentStore) -> Answer:
    async with api(BrokenEventStore()) as (_app, client):
        response = await client.post(f"/orders/{new_id()}/place")
    return answer(("post", "/orders/{order_id}/place"), response)


@provokes("store-unavailable")
async def _store_unavailable(_: DocumentStore) -> Answer:
    async with api(UnavailableEventStore()) as (_app, client):
        response = await client.post("/orders", json=new_order())
    return answer(("post", "/orders"), response)


@provokes("malformed-consistency-token")
async def _malformed_consistency_token(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.get(
            f"/orders/{new_id()}", headers={"X-Consistency-Token": "yesterday"}
        )
    return answer(("get", "/orders/{order_id}"), response)


@provokes("malformed-cursor")
async def _malformed_cursor(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.get("/customers/cust-1/orders", params={"cursor": "not-ours"})
    return answer(("get", "/customers/{customer_id}/orders"), response)


@provokes("too-many-waiting-reads", on_mongodb=True)
async def _too_many_waiting_reads(documents: DocumentStore) -> Answer:
    far_future = {"X-Consistency-Token": str(10**15)}
    async with api(documents=documents, read_wait_max_waiters=1) as (_app, client):
        path = f"/orders/{new_id()}"
        held = asyncio.create_task(client.get(path, headers=far_future))

        async def one_waiting() -> bool:
            metrics = samples((await client.get("/metrics")).text)
            return metrics.get(("orders_api_read_your_writes_waiting", frozenset())) == 1

        try:
            await wait_until(one_waiting, "a read waiting for its token")
            response = await client.get(path, headers=far_future)
        finally:
            held.cancel()
            await asyncio.gather(held, return_exceptions=True)
    return answer(("get", "/orders/{order_id}"), response)


@provokes("not-ready")
async def _not_ready(_: DocumentStore) -> Answer:
    async with api(UnavailableEventStore()) as (_app, client):
        response = await client.get("/health/ready")
    return answer(("get", "/health/ready"), response)


@provokes("unknown-projection")
async def _unknown_projection(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.get("/projections/no_such_projection")
    return answer(("get", "/projections/{name}"), response)


@provokes("unauthorized")
async def _unauthorized(_: DocumentStore) -> Answer:
    async with api(admin_token=ADMIN_TOKEN) as (_app, client):
        response = await client.get("/admin/dead-letters", headers=bearer("not-the-token"))
    return answer(("get", "/admin/dead-letters"), response)


@provokes("rebuild-already-running", on_mongodb=True)
async def _rebuild_already_running(documents: DocumentStore) -> Answer:
    # A long grace period keeps the first rebuild running (it waits to drop the old version)
    # until the API shuts down.
    settings = {"admin_token": ADMIN_TOKEN, "projector_retire_grace_s": 600}
    async with api(documents=documents, **settings) as (_app, client):
        path = "/admin/projections/order_views/rebuild"
        first = await client.post(path, headers=bearer(ADMIN_TOKEN))
        assert first.status_code == 202, first.text
        response = await client.post(path, headers=bearer(ADMIN_TOKEN))
    return answer(("post", "/admin/projections/{name}/rebuild"), response)


@provokes("nothing-to-park", on_mongodb=True)
async def _nothing_to_park(documents: DocumentStore) -> Answer:
    async with api(documents=documents, admin_token=ADMIN_TOKEN) as (_app, client):
        response = await client.post(
            "/admin/projections/order_views/dead-letters/park", headers=bearer(ADMIN_TOKEN)
        )
    return answer(("post", "/admin/projections/{name}/dead-letters/park"), response)


@provokes("not-found")
async def _not_found(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.get("/nowhere")
    return answer(ON_NO_OPERATION, response)


@provokes("method-not-allowed")
async def _method_not_allowed(_: DocumentStore) -> Answer:
    async with api() as (_app, client):
        response = await client.get(f"/orders/{new_id()}/place")
    return answer(ON_NO_OPERATION, response)


@provokes("too-many-requests-in-progress")
async def _too_many_requests(_: DocumentStore) -> Answer:
    async with served(api_limit_concurrency=1) as port, connected(port) as holder:
        holder.writer.write(
            b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        status, _, _ = await holder.response()
        assert status == 100  # the app asked for the body: the one request in progress
        async with connected(port) as refused:
            refused.writer.write(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
            refusal = await raw_answer(("get", "/health/live"), refused)
        holder.writer.write(b"{}")
        status, _, _ = await holder.response()
        assert status == 422  # the held request is then answered as usual
    return refusal


@provokes("too-many-connections")
async def _too_many_connections(_: DocumentStore) -> Answer:
    async with served(api_max_connections=1) as port, connected(port) as first:
        first.writer.write(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
        status, _, _ = await first.response()
        assert status == 200  # answered, and kept open: the one connection allowed
        async with connected(port) as refused:  # answered before it sends anything
            return await raw_answer(("get", "/health/live"), refused)


@provokes("request-body-timeout")
async def _request_body_timeout(_: DocumentStore) -> Answer:
    async with served(api_body_timeout_s=0.2) as port, connected(port) as slow:
        slow.writer.write(
            b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"customer_id": '
        )
        return await raw_answer(("post", "/orders"), slow)


# --- the checks -------------------------------------------------------------------------------


def test_every_documented_problem_has_a_provocation(document: dict[str, Any]) -> None:
    assert set(documented_problems(document)) == set(PROVOCATIONS)


@pytest.fixture
def documents(name: str, request: pytest.FixtureRequest) -> DocumentStore:
    if name in ON_MONGODB:
        store: DocumentStore = request.getfixturevalue("document_store")
        return store
    return UnusedDocumentStore()


@pytest.mark.parametrize("name", sorted(PROVOCATIONS))
async def test_a_documented_problem_is_what_the_api_answers(
    name: str, document: dict[str, Any], documents: DocumentStore
) -> None:
    got = await PROVOCATIONS[name](documents)

    assert got.headers["content-type"] == PROBLEM_JSON, got
    assert got.body["type"] == PROBLEM_TYPE_BASE + name, got
    assert got.body["status"] == got.status, got
    places = documented_problems(document).get(name, [])
    here = [
        place
        for place in places
        if place.operation == got.operation and place.status == str(got.status)
    ]
    where = got.operation or "no operation"
    assert here, f"{name} is not documented as {got.status} on {where}, only on {places}"
    assert {place.example["title"] for place in here} == {got.body["title"]}, got
    assert {place.example["status"] for place in here} == {got.status}, got
    promised = {header.lower() for header in CATALOGUE.named(name).headers}
    assert promised <= set(got.headers), got
    if "retry-after" in promised:
        assert int(got.headers["retry-after"]) >= 1, got
