"""Every error-to-HTTP mapping of the API, installed once by the app factory.

Framework errors (malformed JSON, validation, unknown routes, anything unexpected) come from
``shared.web.problem_details``; each side maps its own errors; a store that cannot be reached is
the same 503 whichever side hit it. Every mapping answers a catalogue entry
(``orders_api.problems.CATALOGUE``).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.ports.errors import StoreUnavailable
from shared.process.logging_setup import redact
from shared.web.problem_catalogue import STORE_UNAVAILABLE
from shared.web.problem_details import ProblemError, install_problem_handlers, problem_response
from write_side.http import install_command_error_handlers

log = logging.getLogger(__name__)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 naming the store, with Retry-After. The reason (the driver's text: internal hosts,
    ports, timeouts) goes to the log, one line, never to the client."""
    assert isinstance(exc, StoreUnavailable)
    store = redact(exc.store)
    log.warning("%s unavailable: %s", store, redact(exc.reason))
    return problem_response(
        request,
        ProblemError(
            STORE_UNAVAILABLE,
            f"{store} unavailable; retry later",
            headers={"Retry-After": str(max(1, exc.retry_after_s))},
            store=store,
        ),
    )


def install_error_handlers(app: FastAPI) -> None:
    install_problem_handlers(app)
    install_command_error_handlers(app)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
