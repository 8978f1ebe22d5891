"""One catalogue of problem types: what the API can send is what its OpenAPI document lists.

Every ``ProblemType`` the code defines is an entry of ``orders_api.problems.CATALOGUE`` (defined
once, at module level, so none is made up where it is raised); every entry a client can receive
is documented, and every documented type is an entry, with the entry's status and title. That
each documented type is really answered is ``test_documented_problems``.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from orders_api.app import create_app
from orders_api.openapi import complete
from orders_api.problems import CATALOGUE
from orders_api.settings import ApiSettings
from shared.web.problem_catalogue import ProblemCatalogue, ProblemType
from shared.web.problem_details import PROBLEM_JSON
from shared.web.problem_docs import problem_responses
from tests.api.stubs import UnusedDocumentStore
from tests.fakes.event_store import InMemoryEventStore

PACKAGES = ["shared", "write_side", "read_side", "orders_api"]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(
        ApiSettings(admin_token="catalogue-token-0123456789"),
        event_store=InMemoryEventStore(),
        document_store=UnusedDocumentStore(),
    )
    return app.openapi()


def documented_examples(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, status, example body) of every problem example in the document."""
    responses = [
        (f"{method.upper()} {path}", status, response)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status[:1] in "45"
    ]
    responses += [
        (f"components.responses.{name}", "", response)
        for name, response in document["components"].get("responses", {}).items()
    ]
    return [
        (where, status, example["value"])
        for where, status, response in responses
        for example in response["content"][PROBLEM_JSON]["examples"].values()
    ]


def test_every_documented_example_is_a_catalogue_entry(document: dict[str, Any]) -> None:
    wrong = []
    for where, status, body in documented_examples(document):
        kind = CATALOGUE.by_uri(body["type"])
        if kind is None:
            wrong.append(f"{where}: {body['type']} is not in the catalogue")
        elif (body["status"], body["title"]) != (kind.status, kind.title) or (
            status and int(status) != kind.status
        ):
            wrong.append(f"{where}: {status} {body} is not {kind}")
    assert not wrong, "\n".join(wrong)


def test_every_problem_a_client_can_receive_is_documented(document: dict[str, Any]) -> None:
    documented = {CATALOGUE.by_uri(body["type"]) for _, _, body in documented_examples(document)}
    sent = {kind for kind in CATALOGUE if kind.reaches_client}
    assert documented == sent, {kind.name for kind in documented ^ sent if kind}


def test_the_problem_schema_enumerates_the_catalogue(document: dict[str, Any]) -> None:
    types = document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert types == [kind.uri for kind in CATALOGUE if kind.reaches_client]


def _modules() -> list[ModuleType]:
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if not info.name.endswith("__main__"):  # running it would start the API
                modules.append(importlib.import_module(info.name))
    return modules


def test_every_problem_type_of_the_code_is_in_the_catalogue() -> None:
    defined = {
        f"{module.__name__}.{name}": value
        for module in _modules()
        for name, value in vars(module).items()
        if isinstance(value, ProblemType)
    }
    assert {id(kind) for kind in CATALOGUE} <= {id(kind) for kind in defined.values()}
    missing = sorted(where for where, kind in defined.items() if kind not in CATALOGUE)
    assert not missing, f"problem types outside the catalogue: {missing}"


def test_problem_types_are_defined_once_at_module_level_only() -> None:
    """So the module walk above sees them all: none is built inside a function or a call."""
    inline = []
    for module in _modules():
        source = Path(str(module.__file__)).read_text()
        tree = ast.parse(source)
        top_level = {
            id(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ProblemType"
                and id(node) not in top_level
            ):
                inline.append(f"{module.__name__}:{node.lineno}")
    assert not inline, f"ProblemType built outside a module-level assignment: {inline}"


def test_a_catalogue_refuses_two_types_of_one_name() -> None:
    first = ProblemType("twice", 409, "First", "first", {"detail": "first"})
    second = ProblemType("twice", 410, "Second", "second", {"detail": "second"})
    with pytest.raises(ValueError, match="twice"):
        ProblemCatalogue([first], [second])


def test_a_document_listing_a_type_outside_the_catalogue_is_refused() -> None:
    made_up = ProblemType("made-up", 409, "Made up", "not an entry", {"detail": "nothing"})
    app = FastAPI()

    @app.get("/somewhere", responses=problem_responses(made_up))
    async def somewhere() -> None:
        """A route documenting a problem nobody catalogued."""

    document = get_openapi(title="t", version="1", routes=app.routes)
    with pytest.raises(ValueError, match="made-up"):
        complete(document)
