"""Who may call the admin endpoints: whoever sends ``Authorization: Bearer <ADMIN_TOKEN>``.

Without ``ADMIN_TOKEN`` the admin router is not even mounted (the app factory leaves it out), so
admin paths answer 404 like any unknown path; ``require_admin`` answers the same 404 should it
ever run without a token. A missing or wrong token is a 401 with ``WWW-Authenticate: Bearer``,
logged with the method, path and client but never with what was sent: a wrong token is often a
right token for something else. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orders_api.deps import Settings
from orders_api.problems import UNAUTHORIZED
from shared.web.problem_catalogue import NOT_FOUND
from shared.web.problem_details import ProblemError

log = logging.getLogger(__name__)
REALM = "orders-admin"
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="`Authorization: Bearer <ADMIN_TOKEN>`; admin endpoints are disabled (404) "
    "when the API runs without ADMIN_TOKEN",
)


def _refuse(request: Request, reason: str, error: str | None) -> ProblemError:
    client = request.client.host if request.client else "unknown"
    log.warning(
        "admin request refused (%s): %s %s from %s",
        reason,
        request.method,
        request.url.path,
        client,
    )
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return ProblemError(
        UNAUTHORIZED,
        "admin endpoints need Authorization: Bearer <ADMIN_TOKEN>",
        headers={"WWW-Authenticate": challenge},
    )


async def require_admin(
    request: Request,
    settings: Settings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = settings.admin_token
    if expected is None:
        raise ProblemError(NOT_FOUND, "Not Found")
    if credentials is None:
        # No header, or a scheme other than Bearer (RFC 6750: no error code for those).
        raise _refuse(request, "no bearer token", None)
    given = credentials.credentials.encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected.get_secret_value().encode("utf-8")):
        raise _refuse(request, "wrong token", "invalid_token")


AdminOnly = Depends(require_admin)
