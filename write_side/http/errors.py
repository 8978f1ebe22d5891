"""The one place where the write side's errors become HTTP problems.

Routes never catch these; the app factory installs the handlers once. Each error maps to one
catalogue entry (``write_side.http.problems``, ``shared.web.problem_catalogue``): a broken
business rule 409 ``rule-violation`` (naming the rule), an unknown order 404 ``order-not-found``,
a pinned version that no longer holds 412 ``version-mismatch``, and a conflict that survived the
handler's retries 409 ``concurrent-modification``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.ports.event_store import ConcurrencyError
from shared.web.problem_catalogue import ORDER_NOT_FOUND
from shared.web.problem_details import ProblemError, problem_response
from write_side.errors import OrderNotFound, RuleViolation, VersionMismatch
from write_side.http.problems import CONCURRENT_MODIFICATION, RULE_VIOLATION, VERSION_MISMATCH


def _rule_violation(error: RuleViolation) -> ProblemError:
    return ProblemError(RULE_VIOLATION, error.message, rule=error.rule)


def _order_not_found(error: OrderNotFound) -> ProblemError:
    return ProblemError(ORDER_NOT_FOUND, f"no order {error.order_id}")


def _version_mismatch(error: VersionMismatch) -> ProblemError:
    at = "does not exist" if error.actual is None else f"is at version {error.actual}"
    return ProblemError(
        VERSION_MISMATCH,
        f"If-Match named version {error.expected} but the order {at}",
        expected_version=error.expected,
        current_version=error.actual,
    )


def _concurrency(error: ConcurrencyError) -> ProblemError:
    return ProblemError(
        CONCURRENT_MODIFICATION,
        "the order kept changing while this command was decided; retry it",
        headers={"Retry-After": "1"},
    )


def _handler[E: Exception](
    error_type: type[E], to_problem: Callable[[E], ProblemError]
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, error_type)
        return problem_response(request, to_problem(exc))

    return handle


def install_command_error_handlers(app: FastAPI) -> None:
    """Map the write side's errors to problem responses (called once by the app factory)."""
    app.add_exception_handler(RuleViolation, _handler(RuleViolation, _rule_violation))
    app.add_exception_handler(OrderNotFound, _handler(OrderNotFound, _order_not_found))
    app.add_exception_handler(VersionMismatch, _handler(VersionMismatch, _version_mismatch))
    app.add_exception_handler(ConcurrencyError, _handler(ConcurrencyError, _concurrency))
