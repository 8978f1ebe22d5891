"""compose.cluster.yaml: a three-node KurrentDB cluster, a three-member MongoDB replica set that a
one-shot service initiates, and replicated app services whose URIs name every node and member.

The generic checks (schema, settings, health checks, dependencies) run on this file in
test_compose.py; these are the ones particular to a cluster. The URIs are read by the drivers'
own parsers, so a URI a driver would take differently (or refuse) fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from esdbclient.connection_spec import ConnectionSpec
from pymongo.uri_parser import parse_uri

from tests.deploy.compose_files import APP_SERVICES, COMPLETED, load, one_shot_services, replicas

KURRENTDB_PORT = 2113
MONGO_PORT = 27017
LOOPBACK = {"", "127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return load("compose.cluster.yaml")


def nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The KurrentDB services, by name."""
    return {
        name: service
        for name, service in compose["services"].items()
        if "/kurrentdb:" in service.get("image", "")
    }


def mongo_members(compose: dict[str, Any]) -> dict[str, list[str]]:
    """The services running ``mongod``, with their command."""
    return {
        name: [str(part) for part in service["command"]]
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("mongo:")
        and service.get("command", [""])[0] == "mongod"
    }


def replica_set_of(command: list[str]) -> str | None:
    for index, part in enumerate(command):
        if part == "--replSet":
            return command[index + 1]
        if part.startswith("--replSet="):
            return part.partition("=")[2]
    return None


def init_service(compose: dict[str, Any]) -> tuple[str, str]:
    """The one-shot service that runs ``rs.initiate``, and its script."""
    found = [
        (name, " ".join(str(part) for part in service["command"]))
        for name, service in compose["services"].items()
        if name in one_shot_services(compose) and "rs.initiate" in str(service.get("command"))
    ]
    assert len(found) == 1, f"expected one service initiating the replica set, got {found}"
    return found[0]


def test_the_stores_use_the_images_of_compose_yaml(cluster: dict[str, Any]) -> None:
    single = load("compose.yaml")["services"]
    assert {service["image"] for service in nodes(cluster).values()} == {
        single["eventstore"]["image"]
    }
    members = cluster["services"]
    assert {members[name]["image"] for name in mongo_members(cluster)} == {single["mongo"]["image"]}


def test_three_kurrentdb_nodes_form_one_cluster_of_three(cluster: dict[str, Any]) -> None:
    found = nodes(cluster)
    assert len(found) == 3, sorted(found)
    for name, service in found.items():
        environment = {key: str(value) for key, value in service["environment"].items()}
        assert environment["KURRENTDB_CLUSTER_SIZE"] == "3", name
        assert environment["KURRENTDB_INSECURE"] == "true", name
        assert environment.get("KURRENTDB_NODE_PORT", str(KURRENTDB_PORT)) == str(KURRENTDB_PORT)
        # Replication binds to loopback by default: the nodes could not reach each other.
        assert environment.get("KURRENTDB_REPLICATION_IP", "") not in LOOPBACK, name
        if environment.get("KURRENTDB_DISCOVER_VIA_DNS", "true") == "false":
            seeds = set(environment["KURRENTDB_GOSSIP_SEED"].split(","))
            others = {f"{other}:{KURRENTDB_PORT}" for other in found if other != name}
            assert seeds == others, f"{name} gossips with {seeds}, not the other nodes"
        else:
            assert environment.get("KURRENTDB_CLUSTER_DNS"), f"{name}: no gossip seeds or DNS"


def test_every_node_advertises_its_name_in_the_network(cluster: dict[str, Any]) -> None:
    """Nodes and clients connect to what a node advertises: its service name resolves in the
    compose network, a container address bound to 0.0.0.0 would not be advertised usefully."""
    for name, service in nodes(cluster).items():
        environment = service["environment"]
        assert environment["KURRENTDB_NODE_HOST_ADVERTISE_AS"] == name
        assert environment["KURRENTDB_REPLICATION_HOST_ADVERTISE_AS"] == name
        assert environment.get("KURRENTDB_ADVERTISE_HOST_TO_CLIENT_AS", name) == name


def test_three_mongo_members_share_one_replica_set(cluster: dict[str, Any]) -> None:
    members = mongo_members(cluster)
    assert len(members) == 3, sorted(members)
    assert {replica_set_of(command) for command in members.values()} == {"rs0"}


def test_the_init_service_initiates_the_members_and_waits_for_a_primary(
    cluster: dict[str, Any],
) -> None:
    name, script = init_service(cluster)
    service = cluster["services"][name]
    members = mongo_members(cluster)
    assert service["depends_on"] == {member: {"condition": "service_healthy"} for member in members}
    assert re.search(r'_id:\s*"rs0"', script), "the replica set it initiates is not rs0"
    hosts = set(re.findall(r'host:\s*"([^"]+)"', script))
    assert hosts == {f"{member}:{MONGO_PORT}" for member in members}
    # Idempotent: a restarted stack finds the set initiated and must not fail on it.
    assert "NotYetInitialized" in script
    assert ".primary" in script, "it does not wait until a primary exists"
    # Compose would substitute "$..." in the script before mongosh sees it.
    assert "$" not in script


def test_the_app_services_wait_for_the_replica_set(cluster: dict[str, Any]) -> None:
    name, _ = init_service(cluster)
    for service in APP_SERVICES:
        assert cluster["services"][service]["depends_on"][name] == {"condition": COMPLETED}


def test_two_api_replicas_and_three_projectors(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    assert replicas(services["api"]) == 2
    assert replicas(services["projector"]) == 3


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_the_eventstore_uri_names_every_node(cluster: dict[str, Any], service: str) -> None:
    uri = cluster["services"][service]["environment"]["EVENTSTORE_URI"]
    spec = ConnectionSpec(uri)
    assert set(spec.targets) == {f"{node}:{KURRENTDB_PORT}" for node in nodes(cluster)}
    assert spec.options.Tls is False


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_the_mongo_uri_names_every_member_of_the_set(cluster: dict[str, Any], service: str) -> None:
    parsed = parse_uri(cluster["services"][service]["environment"]["MONGO_URI"])
    assert set(parsed["nodelist"]) == {(member, MONGO_PORT) for member in mongo_members(cluster)}
    assert parsed["options"]["replicaSet"] == "rs0"
    assert not parsed["options"].get("directConnection"), "a direct connection never fails over"
