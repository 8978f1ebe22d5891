"""RFC 9457 problem details: every error response of the HTTP API is application/problem+json.

Routers raise ``ProblemError`` (or domain errors that their own handlers map to one); the app
factory calls ``install_problem_handlers`` once so framework errors (malformed JSON, validation,
unknown routes, anything unexpected) get the same shape and never leak a stack trace. Every
problem is one of the catalogue's ``ProblemType`` entries (``shared.web.problem_catalogue``):
its status, type and title come from there, never from the place that raises it.

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
from shared.web.problem_catalogue import (
    CONTENT_TOO_LARGE,
    HTTP_ERROR,
    INTERNAL_ERROR,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PROBLEM_TYPE_BASE,
    VALIDATION_FAILED,
    ProblemType,
)

__all__ = [
    "INSTANCE_PREFIX",
    "PROBLEM_JSON",
    "PROBLEM_TYPE_BASE",  # defined with the catalogue; many modules take it from here
    "Problem",
    "ProblemError",
    "install_problem_handlers",
    "problem_body",
    "problem_instance",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
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
    """Raise to answer with a problem document of the catalogued ``kind``.

    ``status`` overrides the kind's only for a framework error whose status no entry names.
    """

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = kind.status if status is None else status
        self.title = kind.title
        self.type = kind.name
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def problem_instance() -> str | None:
    """The current request's correlation id as a URN (the middleware has validated it)."""
    chosen = correlation_id.get()
    return INSTANCE_PREFIX + chosen if chosen else None


def problem_body(error: ProblemError, instance: str | None = None) -> dict[str, Any]:
    """The problem document of ``error`` (the same for an answer and an OpenAPI example)."""
    body: dict[str, Any] = {
        "type": error.kind.uri,
        "title": error.title,
        "status": error.status,
        # Driver text may carry a store URI: mask its user info by shape alone, so text a
        # client sent comes back the same whether or not it is a secret.
        "detail": redact_uri_credentials(error.detail),
        **error.extra,
    }
    if instance is not None:  # outside a request's correlation context: no instance at all
        body["instance"] = instance
    return body


def problem_response(request: Request, error: ProblemError) -> JSONResponse:
    body = problem_body(error, problem_instance())
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
                MALFORMED_JSON,
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
    return problem_response(request, ProblemError(VALIDATION_FAILED, detail, errors=fields))


# The framework's own HTTP errors: unknown paths and methods, and (FastAPI) a body it could not
# read at all, which is a 400; any other status keeps its status as an HTTP_ERROR.
_HTTP_ERRORS = {kind.status: kind for kind in (NOT_FOUND, METHOD_NOT_ALLOWED, CONTENT_TOO_LARGE)}


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = _HTTP_ERRORS.get(exc.status_code, HTTP_ERROR)
    error = ProblemError(kind, str(exc.detail), headers=exc.headers or None, status=exc.status_code)
    return problem_response(request, error)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request, ProblemError(INTERNAL_ERROR, str(INTERNAL_ERROR.example["detail"]))
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
