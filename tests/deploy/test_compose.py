"""compose.yaml is valid Compose and configures the services only with settings they define."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from orders_api.settings import ApiSettings
from projector.settings import ProjectorSettings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {"api": ApiSettings, "projector": ProjectorSettings}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_the_four_services_exist_with_pinned_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"eventstore", "mongo", "api", "projector"}
    for name in ("eventstore", "mongo"):
        image = services[name]["image"]
        assert re.search(r":\d+(\.\d+)+$", image), f"{name} image {image!r} is not pinned"
        assert "healthcheck" in services[name]
        assert services[name]["volumes"], f"{name} keeps no data volume"
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
        conditions = services[name]["depends_on"]
        assert conditions == {
            "eventstore": {"condition": "service_healthy"},
            "mongo": {"condition": "service_healthy"},
        }


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_every_variable_a_service_sets_is_a_setting_it_reads(
    compose: dict[str, Any], service: str
) -> None:
    settings = APP_SERVICES[service]
    known = {name.upper() for name in settings.model_fields}
    environment = compose["services"][service]["environment"]
    unknown = sorted(set(environment) - known)
    assert not unknown, f"{service} sets variables its settings do not define: {unknown}"


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_the_compose_environment_is_a_valid_configuration(
    compose: dict[str, Any], service: str
) -> None:
    environment = {
        key: value
        for key, value in compose["services"][service]["environment"].items()
        if not str(value).startswith("${")
    }
    APP_SERVICES[service](**{key.lower(): value for key, value in environment.items()})


def test_dockerfile_runs_as_non_root_from_the_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.13[\w.-]*-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "-c constraints.txt" in dockerfile


def test_the_admin_command_runs_in_the_projector_image() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^rebuild-projection = "projector\.', pyproject, re.M)
