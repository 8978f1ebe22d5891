"""OpenAPI responses of problems, built from catalogue entries only.

A route documents the problems it can answer by naming their ``ProblemType`` entries; several of
one status share that status's response, one named example per type. Each example body is made
by ``problem_body`` from a ``ProblemError`` of the entry, exactly as an answer is, so ``/docs``
shows the type, title and status the API sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.web.problem_catalogue import ProblemType
from shared.web.problem_details import PROBLEM_JSON, Problem, ProblemError, problem_body

Responses = dict[int | str, dict[str, Any]]


def example_body(kind: ProblemType) -> dict[str, Any]:
    """The example problem document of ``kind``."""
    detail = str(kind.example["detail"])
    extra = {key: value for key, value in kind.example.items() if key != "detail"}
    return problem_body(ProblemError(kind, detail, **extra))


def problem_entry(kinds: Iterable[ProblemType]) -> dict[str, Any]:
    """The OpenAPI response of problems of one status: a description naming each type, one
    example per type, and the headers they carry."""
    chosen = list(dict.fromkeys(kinds))
    statuses = {kind.status for kind in chosen}
    if len(statuses) != 1:
        raise ValueError(f"one response documents one status, not {sorted(statuses)}")
    headers: dict[str, Any] = {}
    for name in dict.fromkeys(name for kind in chosen for name in kind.headers):
        carriers = [kind for kind in chosen if name in kind.headers]
        header = dict(carriers[0].headers[name])
        if len(carriers) < len(chosen):  # say which of the types sharing the status carry it
            names = ", ".join(f"`{kind.name}`" for kind in carriers)
            header["description"] = f"{header['description']} (with {names})"
        headers[name] = header
    entry: dict[str, Any] = {
        "description": "\n".join(f"- `{kind.name}`: {kind.description}" for kind in chosen),
        "content": {
            PROBLEM_JSON: {
                "examples": {
                    kind.name: {"summary": kind.title, "value": example_body(kind)}
                    for kind in chosen
                }
            }
        },
    }
    if headers:
        entry["headers"] = headers
    return entry


def problem_responses(*kinds: ProblemType) -> Responses:
    """The ``responses=`` entries of a route that can answer the given problems."""
    by_status: dict[int, list[ProblemType]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: {"model": Problem, **problem_entry(grouped)}
        for status, grouped in sorted(by_status.items())
    }
