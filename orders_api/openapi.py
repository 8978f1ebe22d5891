"""The OpenAPI document, with error responses typed as what they are: problem+json.

FastAPI files a response ``model`` under ``application/json``; every error of this API is
``application/problem+json`` (RFC 9457), so the schema is moved there where both are declared.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.problem_details import PROBLEM_JSON


def _problem_content_only(document: dict[str, Any]) -> dict[str, Any]:
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[:1] in "45" and PROBLEM_JSON in content and "application/json" in content:
                    schema = content.pop("application/json").get("schema")
                    if schema is not None:
                        content[PROBLEM_JSON].setdefault("schema", schema)
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
            app.openapi_schema = _problem_content_only(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
