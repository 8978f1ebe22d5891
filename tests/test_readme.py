"""README's configuration table lists every setting the processes read, with its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from orders_api.settings import ApiSettings
from projector.settings import ProjectorSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
ROWS = {
    match.group(1): match.group(2)
    for match in re.finditer(r"^\| `([A-Z_]+)` \| (.+?) \|", README, re.M)
}


@pytest.mark.parametrize("settings", [ApiSettings, ProjectorSettings])
def test_every_setting_is_documented_with_its_default(settings: type[BaseSettings]) -> None:
    for name, field in settings.model_fields.items():
        variable = name.upper()
        assert variable in ROWS, f"README's configuration table lacks {variable}"
        documented = ROWS[variable]
        expected = "unset" if field.default is None else f"`{field.default}`"
        assert documented == expected, f"{variable}: README says {documented}, code {expected}"


def test_the_table_documents_no_setting_that_does_not_exist() -> None:
    known = {name.upper() for s in (ApiSettings, ProjectorSettings) for name in s.model_fields}
    assert set(ROWS) <= known, sorted(set(ROWS) - known)
