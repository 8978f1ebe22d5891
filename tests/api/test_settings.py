"""API settings: defaults, every bad value named at start-up (secrets never echoed), exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orders_api.cli import main
from orders_api.settings import ApiSettings, load_settings_or_exit

SETTINGS_VARIABLES = (
    "EVENTSTORE_URI",
    "MONGO_URI",
    "MONGO_DATABASE",
    "API_HOST",
    "API_PORT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "ADMIN_TOKEN",
    "MAX_BODY_BYTES",
    "READ_WAIT_MS_DEFAULT",
    "READ_WAIT_MS_MAX",
    "STARTUP_WAIT_S",
    "COMMAND_MAX_ATTEMPTS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = ApiSettings()
    assert settings.eventstore_uri == "esdb://127.0.0.1:2113?Tls=false"
    assert settings.mongo_uri == "mongodb://127.0.0.1:27017/?directConnection=true"
    assert (settings.mongo_database, settings.api_port, settings.log_format) == (
        "orders",
        8000,
        "text",
    )
    assert (settings.max_body_bytes, settings.read_wait_ms_default, settings.read_wait_ms_max) == (
        65536,
        2000,
        10000,
    )
    assert settings.admin_token is None


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSTORE_URI", "esdb+discover://cluster.example:2113")
    monkeypatch.setenv("MONGO_URI", "mongodb+srv://user:pw@cluster.example/")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret-admin-token-0123")
    settings = ApiSettings()
    assert settings.log_level == "DEBUG" and settings.log_format == "json"
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret-admin-token-0123"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EVENTSTORE_URI", "esdb://node1:2113,node2:2113,node3:2113?Tls=false"),
        ("MONGO_URI", "mongodb://u:p%40ss@mongo1:27017,mongo2:27017,mongo3/?replicaSet=rs0"),
    ],
)
def test_a_cluster_uri_lists_its_hosts_with_ports(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(ApiSettings(), variable.lower()) == value


def test_an_empty_admin_token_disables_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "")
    assert ApiSettings().admin_token is None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("EVENTSTORE_URI", "http://127.0.0.1:2113", "scheme must be one of esdb://"),
        ("EVENTSTORE_URI", "esdb://", "a host is required"),
        ("EVENTSTORE_URI", "esdb://127.0.0.1:99999", "port must be a number"),
        ("EVENTSTORE_URI", "esdb://node1:2113,node2:99999", "port must be a number"),
        ("EVENTSTORE_URI", "esdb://node1:2113,,node3:2113", "an empty host"),
        ("MONGO_URI", "mongodb://m1:27017,m2:0/?replicaSet=rs0", "port must be a number"),
        ("MONGO_URI", "postgres://db", "scheme must be one of mongodb://"),
        ("MONGO_DATABASE", "orders.v1", "String should match pattern"),
        ("API_PORT", "0", "greater than or equal to 1"),
        ("API_PORT", "70000", "less than or equal to 65535"),
        ("API_PORT", "eighty", "valid integer"),
        ("LOG_LEVEL", "LOUD", "'DEBUG'"),
        ("LOG_FORMAT", "xml", "'text' or 'json'"),
        ("MAX_BODY_BYTES", "10", "greater than or equal to 1024"),
        ("READ_WAIT_MS_MAX", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_value_is_named_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings_or_exit()
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"{variable}: " in message and expected in message


def test_every_bad_variable_is_reported_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_PORT", "0")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SystemExit):
        load_settings_or_exit()
    message = capsys.readouterr().err
    assert "API_PORT: " in message and "LOG_FORMAT: " in message


def test_secrets_are_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", "tooshort")
    monkeypatch.setenv("MONGO_URI", "http://admin:hunter2@db.example/")
    with pytest.raises(SystemExit):
        load_settings_or_exit()
    message = capsys.readouterr().err
    assert "ADMIN_TOKEN: " in message and "MONGO_URI: " in message
    assert "tooshort" not in message and "hunter2" not in message


def test_a_wait_default_above_the_maximum_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("READ_WAIT_MS_DEFAULT", "5000")
    monkeypatch.setenv("READ_WAIT_MS_MAX", "1000")
    with pytest.raises(SystemExit):
        load_settings_or_exit()
    assert "READ_WAIT_MS_DEFAULT (5000) must not exceed READ_WAIT_MS_MAX" in capsys.readouterr().err


def test_the_cli_exits_2_on_a_bad_setting_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVENTSTORE_URI", "tcp://nowhere")
    with pytest.raises(SystemExit) as stopped:
        main(["--port", "8123"])
    assert stopped.value.code == 2
    assert "EVENTSTORE_URI: " in capsys.readouterr().err


def test_the_cli_rejects_a_bad_port_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--port", "65536"])
    assert stopped.value.code == 2
    assert "port must be 1..65535" in capsys.readouterr().err


def test_python_m_orders_api_exits_2_with_the_message() -> None:
    environment = {**os.environ, "API_PORT": "none", "ADMIN_TOKEN": "x"}
    finished = subprocess.run(
        [sys.executable, "-m", "orders_api"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2, finished.stderr
    assert "API_PORT: " in finished.stderr and "ADMIN_TOKEN: " in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" ", "only whitespace"),
        (" " * 20, "only whitespace"),
        ("\t \t", "only whitespace"),
        (" padded-admin-token-0123 ", "must not start or end with whitespace"),
        ("x" * 1025, "at most 1024 characters"),
    ],
)
def test_an_admin_token_that_could_never_work_is_a_start_up_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", value)
    with pytest.raises(SystemExit) as stopped:
        load_settings_or_exit()
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "ADMIN_TOKEN: " in message and expected in message
    assert value.strip() == "" or value.strip() not in message


@pytest.mark.parametrize(
    ("variable", "value", "secret"),
    [
        ("EVENTSTORE_URI", "esdb://user:pa/ssLEAK1@127.0.0.1:2113?Tls=false", "ssLEAK1"),
        ("EVENTSTORE_URI", "esdb://:secretLEAK@127.0.0.1:2113", "secretLEAK"),
        ("MONGO_URI", "mongodb://user:12/ssLEAK1@db:27017/", "ssLEAK1"),
        ("MONGO_URI", "mongodb://user:pw#LEAK1@db:27017/", "LEAK1"),
    ],
)
def test_a_malformed_uri_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    secret: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit):
        load_settings_or_exit()
    message = capsys.readouterr().err
    assert f"{variable}: " in message
    assert secret not in message and "127.0.0.1" not in message and "db:27017" not in message
