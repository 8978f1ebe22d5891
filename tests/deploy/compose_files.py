"""Reading the compose files the way the tests need them, without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from orders_api.settings import ApiSettings
from projector.settings import ProjectorSettings
from shared.process.settings_base import StoreSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("compose.yaml", "compose.cluster.yaml")
APP_SERVICES: dict[str, type[StoreSettings]] = {"api": ApiSettings, "projector": ProjectorSettings}
COMPLETED = "service_completed_successfully"


def load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(loaded, dict), f"{name} is not a mapping"
    return loaded


def one_shot_services(compose: dict[str, Any]) -> set[str]:
    """Services some other service waits to see finish (``service_completed_successfully``)."""
    return {
        name
        for service in compose["services"].values()
        if isinstance(service.get("depends_on"), dict)
        for name, condition in service["depends_on"].items()
        if condition.get("condition") == COMPLETED
    }


def store_services(compose: dict[str, Any]) -> set[str]:
    """The long-running services started from a published image (the stores)."""
    return {
        name
        for name, service in compose["services"].items()
        if "image" in service and name not in one_shot_services(compose)
    }


def replicas(service: dict[str, Any]) -> int:
    count = service.get("deploy", {}).get("replicas", service.get("scale", 1))
    assert isinstance(count, int)
    return count


def host_ports(mapping: str | int | dict[str, Any]) -> str | None:
    """The host side of one ``ports`` entry: ``"9100"``, a range ``"8000-8001"``, or None when
    Docker picks an ephemeral port (only the container port is given)."""
    if isinstance(mapping, dict):
        published = mapping.get("published")
        return None if published is None else str(published)
    parts = str(mapping).split("/")[0].split(":")
    if len(parts) == 1:
        return None
    host = parts[-2]
    return host or None


def port_count(host: str) -> int:
    """How many host ports ``host`` (``"9100"`` or ``"8000-8001"``) offers."""
    matched = re.fullmatch(r"(\d+)(?:-(\d+))?", host)
    assert matched, f"unreadable host port {host!r}"
    first, last = matched.group(1), matched.group(2) or matched.group(1)
    return int(last) - int(first) + 1
