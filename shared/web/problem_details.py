"""RFC 9457 problem details: every error response of the HTTP API is application/problem+json.

Routers raise ``ProblemError`` (or domain errors that their own handlers map to one); the app
factory calls ``install_problem_handlers`` once so framework errors (malformed JSON, validation,
unknown routes, anything unexpected) get the same shape and never leak a stack trace.

A body never tells a client whether its text matched a secret: ``instance`` names the request
by its correlation id (``urn:correlation-id:<id>``) instead of repeating its path, and details
are masked only structurally (user info inside URIs), never against the list of registered
secrets (that list is for logs: text a client sent comes back as sent or not at all).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.process.logging_setup import correlation_id, redact_uri_credentials

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://orders.example/problems/"
INSTANCE_PREFIX = "urn:correlation-id:"
log = logging.getLogger(__name__)


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = Field(
        default=None,
        description="the request's correlation id (its X-Correlation-ID header) as a URN",
        examples=[INSTANCE_PREFIX + "5f1c0c3a9d4e4f6b8a2e7d1c0b9a8f7e"],
    )
    errors: list[dict[str, Any]] | None = None
    rule: str | None = None


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ or title.lower().replace(" ", "-")
        self.headers = dict(headers or {})
        self.extra = extra


def problem_instance() -> str | None:
    """The current request's correlation id as a URN (the middleware has validated it)."""
    chosen = correlation_id.get()
    return INSTANCE_PREFIX + chosen if chosen else None


def problem_response(request: Request, error: ProblemError) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.type,
        "title": error.title,
        "status": error.status,
        # Driver text may carry a store URI: mask its user info by shape alone, so text a
        # client sent comes back the same whether or not it is a secret.
        "detail": redact_uri_credentials(error.detail),
        **error.extra,
    }
    instance = problem_instance()
    if instance is not None:  # outside a request's correlation context: no instance at all
        body["instance"] = instance
    return JSONResponse(
        body, status_code=error.status, media_type=PROBLEM_JSON, headers=error.headers
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(request, exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        first = next(error for error in errors if error.get("type") == "json_invalid")
        return problem_response(
            request,
            ProblemError(
                400,
                "Malformed JSON",
                f"the request body is not valid JSON: "
                f"{first.get('ctx', {}).get('error', 'parse error')}",
            ),
        )
    fields = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in errors
    ]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return problem_response(request, ProblemError(422, "Validation failed", detail, errors=fields))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}.get(
        exc.status_code, "HTTP error"
    )
    return problem_response(
        request,
        ProblemError(exc.status_code, title, str(exc.detail), headers=exc.headers or None),
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request, ProblemError(500, "Internal error", "an unexpected error occurred; it was logged")
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
