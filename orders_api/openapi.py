"""The OpenAPI document, corrected so ``/docs`` shows what the API really does.

- FastAPI files a response ``model`` under ``application/json``; every error of this API is
  ``application/problem+json`` (RFC 9457), so the schema is moved there where both are declared,
  and FastAPI's own validation-error entry is replaced by the problem this API sends instead.
- Every operation can fail unexpectedly: a documented 500 problem is added to each.
- Request bodies and success responses show an example: the one the route gives, else the
  schema's own ``examples``, else one assembled from the examples of its fields.
- A header or query parameter is absent or a value, never null: FastAPI's ``anyOf: [X, null]``
  for an optional one becomes X (``required: false`` already says it may be left out), so the
  formats the routes declare (If-Match, Idempotency-Key, X-Consistency-Token) are the schema.
- ``wait_ms`` shows the operator's bound (READ_WAIT_MS_MAX), the one the runtime enforces.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.web.problem_details import PROBLEM_JSON, PROBLEM_TYPE_BASE, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
_VALIDATION_EXAMPLE = {
    "type": PROBLEM_TYPE_BASE + "validation-failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "path.order_id: Input should be a valid UUID",
    "errors": [
        {
            "field": "path.order_id",
            "message": "Input should be a valid UUID",
            "type": "uuid_parsing",
        }
    ],
}
_INTERNAL_ERROR = {
    "description": "An unexpected error: logged with the request's correlation id (echoed in "
    "X-Correlation-ID); the body never carries a stack trace",
    "content": {
        PROBLEM_JSON: {
            "schema": PROBLEM_REF,
            "example": {
                "type": PROBLEM_TYPE_BASE + "internal-error",
                "title": "Internal error",
                "status": 500,
                "detail": "an unexpected error occurred; it was logged",
            },
        }
    },
}
_MAX_DEPTH = 8
WAIT_MS = "wait_ms"


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path in document.get("paths", {}).values()
        for operation in path.values()
        if isinstance(operation, dict) and "responses" in operation
    ]


def _problem_content_only(operation: dict[str, Any]) -> None:
    for status, response in operation["responses"].items():
        content = response.get("content", {})
        if status[:1] not in "45":
            continue
        json_content = content.get("application/json", {})
        if json_content.get("schema", {}).get("$ref") == _FASTAPI_VALIDATION:
            content.pop("application/json")
            content[PROBLEM_JSON] = {"schema": PROBLEM_REF, "example": _VALIDATION_EXAMPLE}
            response["description"] = "A parameter or the body failed validation"
        elif PROBLEM_JSON in content and "application/json" in content:
            schema = content.pop("application/json").get("schema")
            if schema is not None:
                content[PROBLEM_JSON].setdefault("schema", schema)


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
    """The document with problem+json errors, a 500 on every operation, examples, parameters
    that are never null, and ``wait_ms`` bounded by ``max_wait_ms`` (when given)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    for operation in _operations(document):
        _problem_content_only(operation)
        _no_null_parameters(operation)
        if max_wait_ms is not None:
            _bound_wait(operation, max_wait_ms)
        operation["responses"].setdefault("500", copy.deepcopy(_INTERNAL_ERROR))
        _with_examples(operation, schemas)
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
