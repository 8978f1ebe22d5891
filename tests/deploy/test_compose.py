"""The compose files are valid Compose and configure the services only with settings they define.

Every check here runs on each file (compose.yaml, compose.cluster.yaml); what is particular to
one file is at the end (compose.yaml) or in test_compose_cluster.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.compose_files import (
    APP_SERVICES,
    COMPLETED,
    COMPOSE_FILES,
    ROOT,
    host_ports,
    load,
    one_shot_services,
    port_count,
    replicas,
    store_services,
)


@pytest.fixture(scope="module", params=COMPOSE_FILES)
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


@pytest.fixture(scope="module")
def single() -> dict[str, Any]:
    return load("compose.yaml")


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_stores_are_pinned_checked_and_keep_their_data(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(APP_SERVICES) <= set(services)
    for name in store_services(compose) | one_shot_services(compose):
        image = services[name]["image"]
        assert re.search(r":\d+(\.\d+)+$", image), f"{name} image {image!r} is not pinned"
    for name in store_services(compose):
        assert "healthcheck" in services[name], f"{name} has no health check"
        assert services[name]["volumes"], f"{name} keeps no data volume"
    for name in one_shot_services(compose):
        # A one-shot service restarted by Docker would never count as completed.
        assert services[name].get("restart", "no") == "no", f"{name} is restarted"


def test_app_services_wait_for_every_store_and_every_one_shot(compose: dict[str, Any]) -> None:
    expected = {name: {"condition": "service_healthy"} for name in store_services(compose)}
    expected |= {name: {"condition": COMPLETED} for name in one_shot_services(compose)}
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"] == "."
        assert service["depends_on"] == expected, name


def test_app_commands_are_console_scripts_of_the_image(compose: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    for name in APP_SERVICES:
        command = compose["services"][name]["command"]
        assert command[0] in scripts, f"{name} runs {command[0]!r}, not a console script"


def test_replicated_services_have_no_fixed_name_or_host_port(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        count = replicas(service)
        if count == 1:
            continue
        assert "container_name" not in service, f"{name}: {count} replicas cannot share a name"
        assert "hostname" not in service, f"{name}: {count} replicas would share a hostname"
        for mapping in service.get("ports", []):
            host = host_ports(mapping)
            assert host is None or port_count(host) >= count, (
                f"{name}: {count} replicas cannot all publish host port(s) {host}"
            )


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


def test_compose_yaml_runs_the_four_services(single: dict[str, Any]) -> None:
    assert set(single["services"]) == {"eventstore", "mongo", "api", "projector"}
    assert store_services(single) == {"eventstore", "mongo"}


def test_compose_yaml_runs_two_projectors_scraped_inside_the_network(
    single: dict[str, Any],
) -> None:
    projector = single["services"]["projector"]
    assert replicas(projector) == 2
    assert "ports" not in projector, "a host port cannot be published by two replicas"
    environment = projector["environment"]
    # Reachable from the other containers (Prometheus) on every replica.
    assert environment["PROJECTOR_METRICS_HOST"] == "0.0.0.0"
    assert int(environment["PROJECTOR_METRICS_PORT"]) > 0


def test_dockerfile_runs_as_non_root_from_the_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.13[\w.-]*-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "-c constraints.txt" in dockerfile


def test_the_admin_command_runs_in_the_projector_image() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^rebuild-projection = "projector\.', pyproject, re.M)
