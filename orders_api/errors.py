"""Every error-to-HTTP mapping of the API, installed once by the app factory.

Framework errors (malformed JSON, validation, unknown routes, anything unexpected) come from
``shared.problem_details``; each side maps its own errors; a store that cannot be reached is
the same 503 whichever side hit it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.errors import StoreUnavailable
from shared.logging_setup import redact
from shared.problem_details import ProblemError, install_problem_handlers, problem_response
from write_side.http import install_command_error_handlers


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailable)
    return problem_response(
        request,
        ProblemError(
            503,
            "Service unavailable",
            redact(f"{exc.store} unavailable: {exc.reason}; retry later"),
            type_="store-unavailable",
            headers={"Retry-After": str(max(1, exc.retry_after_s))},
            store=redact(exc.store),
        ),
    )


def install_error_handlers(app: FastAPI) -> None:
    install_problem_handlers(app)
    install_command_error_handlers(app)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
