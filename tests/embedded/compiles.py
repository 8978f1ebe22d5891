"""Counting what makes embedded-mongo's SQLite engine compile a filter into SQL: such a query
reads every row of the collection (and first asks, over every row, which value types its fields
hold), which the engine's lookups by ``_id`` exist to avoid."""

from __future__ import annotations

from typing import Any

import pytest

from embedded.mongo_engines import IdLookupSQLiteEngine


class CompileCount:
    """The filters ``engine`` compiles into SQL from now on (``calls``)."""

    def __init__(self, engine: IdLookupSQLiteEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        compile_plan = engine._compile_read_execution_plan

        def counted(*arguments: Any, **options: Any) -> Any:
            self.calls += 1
            return compile_plan(*arguments, **options)

        monkeypatch.setattr(engine, "_compile_read_execution_plan", counted)
