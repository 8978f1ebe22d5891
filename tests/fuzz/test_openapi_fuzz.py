"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation is fed generated requests, valid ones and invalid ones, against the app served
by uvicorn over the embedded stores, and every answer must hold to the document:

- no 5xx at all (the stores are up, so not even 503);
- the status is one the operation documents, with the documented content type, headers and body;
- a request valid by the document is accepted or answered with a domain outcome (404 no such
  order, 409 a business rule, 412 a version that does not hold), never 400 or 422, with two
  exceptions the document states in words because JSON Schema cannot: a pagination cursor the
  server did not issue (400 malformed cursor) and a rule across query parameters (422 naming
  ``query``, e.g. a daily-sales range longer than the limit);
- a request invalid by the document is refused with a 4xx.

Bounded and reproducible: a fixed number of examples per operation, derandomized (a fixed
seed), no example database, no deadline (a 2-core machine shared with other work is slow).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders_api.app import create_app
from shared.web.problem_details import PROBLEM_TYPE_BASE
from tests.fuzz.conftest import ADMIN_TOKEN, FuzzStats, LiveApi, fuzzed_settings

MAX_EXAMPLES = 25
# Domain answers to a well-formed request: no such order / projection, a business rule or a
# running rebuild, a version that does not hold.
DOMAIN_ANSWERS = ["2xx", "404", "409", "412"]
# Refusals of a request the document calls invalid (405: a method the path does not have).
REFUSALS = ["400", "404", "405", "409", "412", "413", "415", "422"]
AUTHORIZATION = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _refused_for_a_stated_reason(response: Response, case: Case) -> bool:
    """A refusal of a schema-valid request for a rule the document states in words only."""
    if response.headers.get("content-type", [""])[0] != "application/problem+json":
        return False
    problem: dict[str, Any] = response.json()
    if response.status_code == 400 and case.query and "cursor" in case.query:
        return bool(problem["type"] == PROBLEM_TYPE_BASE + "malformed-cursor")
    if response.status_code == 422:
        return all(error["field"] == "query" for error in problem.get("errors", []))
    return False


def _headers_as_documented(case: Case) -> bool:
    """Whether every generated header matches its parameter's schema. schemathesis's coverage
    phase can drop the quotes of a pattern's literal (it sends If-Match ``0`` for ``"0"``) and
    still call the request valid; such a request is checked like any other, except that its
    refusal is not held against the API."""
    for parameter in case.operation.headers:
        value = (case.headers or {}).get(parameter.name)
        schema = parameter.definition.get("schema", {})
        if value is not None and not jsonschema.Draft202012Validator(schema).is_valid(value):
            return False
    return True


def valid_requests_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis's positive_data_acceptance, less the refusals the document states."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _refused_for_a_stated_reason(response, case) or not _headers_as_documented(case):
            return None
        raise


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    valid_requests_accepted,
    negative_data_rejection,
]


def _schema() -> schemathesis.BaseSchema:
    """The document of the app as the fixture serves it (admin mounted, the same wait bound);
    building it needs no store, so it is ready when pytest collects the operations."""
    document = create_app(fuzzed_settings()).openapi()
    config = schemathesis.Config.from_dict(
        {
            "headers": AUTHORIZATION,
            "checks": {
                "positive_data_acceptance": {"expected-statuses": DOMAIN_ANSWERS},
                "negative_data_rejection": {"expected-statuses": REFUSALS},
            },
            "generation": {"mode": "all", "database": "none", "deterministic": True},
        }
    )
    return schemathesis.openapi.from_dict(document, config=config)


schema = _schema()


def test_the_fuzzed_document_is_the_one_served(live_api: LiveApi) -> None:
    served = requests.get(f"{live_api.base_url}/openapi.json", timeout=30).json()
    assert served == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_holds_to_its_openapi_document(
    case: Case, live_api: LiveApi, fuzz_stats: FuzzStats
) -> None:
    response = case.call(base_url=live_api.base_url, headers=AUTHORIZATION, timeout=30)
    fuzz_stats.by_operation[case.operation.label] += 1
    fuzz_stats.by_status[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)
