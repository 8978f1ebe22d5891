"""The OpenAPI document, corrected so ``/docs`` shows what the API really does.

- Every error response is rebuilt from the problem catalogue (``orders_api.problems.CATALOGUE``):
  the types a route documents (``shared.web.problem_docs``) are looked up by their example's type
  URI, and a documented type the catalogue lacks, or of another status, is an error at once.
  Each error is ``application/problem+json`` (RFC 9457) with the Problem schema; FastAPI's own
  validation-error entry becomes the ``validation-failed`` problem this API sends instead.
- Problems of the process rather than the route are added to each operation: an unexpected
  error (500) and the server's load refusals (503), and on every operation but GET the body
  limits (413 too large, 408 too slow). Problems no operation answers (an unknown path, a wrong
  method) are the document's ``components.responses``.
- The Problem schema enumerates the catalogue's type URIs and the domain's rule names.
- Request bodies and success responses show an example: the one the route gives, else the
  schema's own ``examples``, else one assembled from the examples of its fields.
- A header or query parameter is absent or a value, never null: FastAPI's ``anyOf: [X, null]``
  for an optional one becomes X (``required: false`` already says it may be left out), so the
  formats the routes declare (If-Match, Idempotency-Key, X-Consistency-Token) are the schema.
- ``wait_ms`` shows the operator's bound (READ_WAIT_MS_MAX), the one the runtime enforces.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from orders_api.problems import (
    CATALOGUE,
    REQUEST_BODY_TIMEOUT,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_REQUESTS_IN_PROGRESS,
)
from shared.web.problem_catalogue import (
    CONTENT_TOO_LARGE,
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    VALIDATION_FAILED,
    ProblemType,
)
from shared.web.problem_details import PROBLEM_JSON, Problem
from shared.web.problem_docs import problem_entry
from write_side.http.problems import RULE_NAMES

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
# Answered to any request: an unexpected error, and the server's refusals under load.
_EVERY_OPERATION = (INTERNAL_ERROR, TOO_MANY_REQUESTS_IN_PROGRESS, TOO_MANY_CONNECTIONS)
# Answered to any request with a body (whatever the route does with it), so documented on every
# operation whose method may carry one.
_WITH_BODY = (CONTENT_TOO_LARGE, REQUEST_BODY_TIMEOUT)
_WITHOUT_BODY = {"get", "head"}
# Answered to a path or method the API does not have, so by no operation.
_NO_OPERATION = (NOT_FOUND, METHOD_NOT_ALLOWED)
_MAX_DEPTH = 8
WAIT_MS = "wait_ms"


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def _documented(where: str, status: str, response: dict[str, Any]) -> list[ProblemType]:
    """The catalogue entries an error response documents (by its examples' type URIs)."""
    content = response.get("content", {})
    if content.get("application/json", {}).get("schema", {}).get("$ref") == _FASTAPI_VALIDATION:
        return [VALIDATION_FAILED]
    kinds = []
    for example in content.get(PROBLEM_JSON, {}).get("examples", {}).values():
        uri = example.get("value", {}).get("type", "")
        kind = CATALOGUE.by_uri(uri)
        if kind is None:
            raise ValueError(f"{where} documents {status} {uri!r}, which the catalogue lacks")
        if str(kind.status) != status:
            raise ValueError(f"{where} documents {kind.name} under {status}, not {kind.status}")
        kinds.append(kind)
    if not kinds:
        raise ValueError(
            f"{where} documents {status} without a catalogued problem: name its problems with "
            "shared.web.problem_docs.problem_responses"
        )
    return kinds


def _problem_entry(kinds: list[ProblemType]) -> dict[str, Any]:
    entry = problem_entry(kinds)
    entry["content"][PROBLEM_JSON] = {"schema": PROBLEM_REF, **entry["content"][PROBLEM_JSON]}
    return entry


def _catalogued_problems(method: str, path: str, operation: dict[str, Any]) -> None:
    """Every error response of the operation rebuilt from the catalogue, with the problems
    of the process (``_EVERY_OPERATION``, ``_WITH_BODY``) added."""
    responses = operation["responses"]
    by_status: dict[str, list[ProblemType]] = {}
    for status, response in responses.items():
        if status[:1] in "45":
            by_status[status] = _documented(f"{method.upper()} {path}", status, response)
    added = _EVERY_OPERATION if method in _WITHOUT_BODY else _EVERY_OPERATION + _WITH_BODY
    for kind in added:
        by_status.setdefault(str(kind.status), []).append(kind)
    for status, kinds in by_status.items():
        responses[status] = _problem_entry(kinds)


def _enumerate_problem_values(schemas: dict[str, Any]) -> None:
    """The Problem schema lists every type URI the API sends and every rule name."""
    properties = schemas["Problem"]["properties"]
    properties["type"]["enum"] = [kind.uri for kind in CATALOGUE if kind.reaches_client]
    [rule_names] = [branch for branch in properties["rule"]["anyOf"] if branch["type"] == "string"]
    rule_names["enum"] = list(RULE_NAMES)


def _no_null_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        branches = schema.get("anyOf", [])
        values = [branch for branch in branches if branch.get("type") != "null"]
        if len(branches) == 2 and len(values) == 1:
            rest = {key: value for key, value in schema.items() if key != "anyOf"}
            parameter["schema"] = {**values[0], **rest}


def _bound_wait(operation: dict[str, Any], max_wait_ms: int) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["name"] == WAIT_MS:
            parameter["schema"]["maximum"] = max_wait_ms


def _example(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """An example value for ``schema`` (None when no part of it offers one)."""
    if depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    for branch in schema.get("anyOf", []) + schema.get("allOf", []):
        if branch.get("type") != "null":
            found = _example(branch, schemas, depth + 1)
            if found is not None:
                return found
    if schema.get("type") == "array" and "items" in schema:
        item = _example(schema["items"], schemas, depth + 1)
        return None if item is None else [item]
    if "properties" in schema:
        built = {}
        for name, field in schema["properties"].items():
            value = _example(field, schemas, depth + 1)
            if value is None and "default" in field:
                value = field["default"]
            if value is None and name in schema.get("required", []):
                return None
            built[name] = value
        return built
    return schema.get("default")


def _with_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    media = list(operation.get("requestBody", {}).get("content", {}).values())
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            media += list(response.get("content", {}).values())
    for entry in media:
        if "example" in entry or "examples" in entry or "schema" not in entry:
            continue
        example = _example(entry["schema"], schemas)
        if example is not None:
            entry["example"] = example


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    """FastAPI's validation-error schemas, once nothing refers to them any more."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # the first refers to the second
        rest = {**document, "components": {**document["components"], "schemas": {**schemas}}}
        rest["components"]["schemas"].pop(name, None)
        if f'"#/components/schemas/{name}"' not in json.dumps(rest):
            schemas.pop(name, None)


def complete(document: dict[str, Any], *, max_wait_ms: int | None = None) -> dict[str, Any]:
    """The document with catalogued problem+json errors (and the process's on every operation),
    examples, parameters that are never null, and ``wait_ms`` bounded by ``max_wait_ms`` (when
    given)."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    _enumerate_problem_values(schemas)
    for method, path, operation in _operations(document):
        _catalogued_problems(method, path, operation)
        _no_null_parameters(operation)
        if max_wait_ms is not None:
            _bound_wait(operation, max_wait_ms)
        _with_examples(operation, schemas)
    responses = components.setdefault("responses", {})
    for kind in _NO_OPERATION:
        responses[kind.name] = _problem_entry([kind])
    _drop_unused_schemas(document)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the corrected document (built once, on first request, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            max_wait_ms = getattr(app.state, "read_wait_ms_max", None)
            app.openapi_schema = complete(document, max_wait_ms=max_wait_ms)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
