"""Settings of the projector process, read from the environment (pydantic-settings).

A bad value stops the process at start-up (exit code 2) with one line per bad variable, naming
it and saying what is expected; credentials inside URIs are never echoed.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging_setup import redact

EVENTSTORE_SCHEMES = ("esdb", "esdb+discover")
MONGO_SCHEMES = ("mongodb", "mongodb+srv")
URI_FIELDS = frozenset({"eventstore_uri", "mongo_uri"})
# MongoDB database names: no path separators, dots, spaces, quotes or shell metacharacters.
_MONGO_DATABASE = r'^[^/\\. "$*<>:|?\x00]{1,63}$'


def _check_uri(value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"not a valid URI ({error})") from None
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise ValueError("a host is required, e.g. " + schemes[0] + "://127.0.0.1")
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    return value


class ProjectorSettings(BaseSettings):
    """Everything the projector process reads from its environment."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    eventstore_uri: str = "esdb://127.0.0.1:2113?Tls=false"
    mongo_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_database: Annotated[str, Field(pattern=_MONGO_DATABASE)] = "orders"
    projector_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    projector_batch_ms: Annotated[int, Field(ge=1, le=60_000)] = 100
    # 0 turns the Prometheus endpoint off (tests run several projectors at once).
    projector_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9100
    projector_startup_wait_s: Annotated[float, Field(ge=0, le=600)] = 60.0
    projector_max_backoff_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    # How long a retired version stays readable after a rebuild switched away from it, so
    # queries that resolved it just before the switch still find their documents.
    projector_retire_grace_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("eventstore_uri")
    @classmethod
    def _eventstore_scheme(cls, value: str) -> str:
        return _check_uri(value, EVENTSTORE_SCHEMES)

    @field_validator("mongo_uri")
    @classmethod
    def _mongo_scheme(cls, value: str) -> str:
        return _check_uri(value, MONGO_SCHEMES)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def batch_wait_s(self) -> float:
        return self.projector_batch_ms / 1000


def describe_settings_error(error: ValidationError) -> str:
    """One line per bad variable: its name, what is wrong and the value given."""
    lines = ["invalid configuration:"]
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = f"{field.upper()}: " if field else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        given = item.get("input")
        if not field or isinstance(given, dict):
            shown = ""
        elif field in URI_FIELDS:
            shown = f" (got {redact(str(given))!r})"
        else:
            shown = f" (got {given!r})"
        lines.append(f"  {name}{message}{shown}")
    return "\n".join(lines)


def load_settings_or_exit(**overrides: object) -> ProjectorSettings:
    """Read the environment; on a bad value print which variables are wrong and exit 2."""
    try:
        return ProjectorSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        _exit_with(describe_settings_error(error))


def _exit_with(message: str) -> NoReturn:
    print(f"projector: {message}", file=sys.stderr)
    raise SystemExit(2)
