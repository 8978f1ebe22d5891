"""Settings of the API process, read from the environment (pydantic-settings).

A bad value stops the process at start-up with one line per bad variable, naming it and saying
what is expected; secrets (``ADMIN_TOKEN``, credentials inside URIs) are never echoed.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Annotated, Literal, NoReturn, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging_setup import redact

EVENTSTORE_SCHEMES = ("esdb", "esdb+discover")
MONGO_SCHEMES = ("mongodb", "mongodb+srv")
SECRET_FIELDS = frozenset({"admin_token"})
URI_FIELDS = frozenset({"eventstore_uri", "mongo_uri"})
# MongoDB database names: no path separators, dots, spaces, quotes or shell metacharacters.
_MONGO_DATABASE = r'^[^/\\. "$*<>:|?\x00]{1,63}$'

Port = Annotated[int, Field(ge=1, le=65535)]


def _check_uri(value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
    except ValueError as error:
        raise ValueError(f"not a valid URI ({error})") from None
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in schemes)}")
    if not parts.netloc or not parts.hostname:
        raise ValueError("a host is required, e.g. " + schemes[0] + "://127.0.0.1")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    return value


class ApiSettings(BaseSettings):
    """Everything the API process reads from its environment."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    eventstore_uri: str = "esdb://127.0.0.1:2113?Tls=false"
    mongo_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_database: Annotated[str, Field(pattern=_MONGO_DATABASE)] = "orders"
    api_host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    api_port: Port = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    admin_token: SecretStr | None = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    read_wait_ms_default: Annotated[int, Field(ge=0)] = 2000
    # The read side never waits longer than 10 s (MAX_WAIT_MS); operators may lower it.
    read_wait_ms_max: Annotated[int, Field(ge=0, le=10_000)] = 10_000
    startup_wait_s: Annotated[float, Field(ge=0, le=600)] = 60.0
    # Decide-append rounds a command may take before a conflict answers 409. Each lost round
    # means another command on the same order committed since this one read it, so with n
    # concurrent writers n rounds always suffice; 30 covers bursts well past 20 per order.
    command_max_attempts: Annotated[int, Field(ge=1, le=100)] = 30
    # Rebuilds started over HTTP keep the version they replaced readable this long (the same
    # variable as the projector's, so both kinds of rebuild behave alike).
    projector_retire_grace_s: Annotated[float, Field(ge=0, le=3600)] = 10.0

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

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_disables_admin(cls, value: object) -> object:
        # compose passes ADMIN_TOKEN="" when it is unset: that means "admin disabled".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (or unset to disable admin)")
        return value

    @model_validator(mode="after")
    def _wait_within_max(self) -> Self:
        if self.read_wait_ms_default > self.read_wait_ms_max:
            raise ValueError(
                f"READ_WAIT_MS_DEFAULT ({self.read_wait_ms_default}) must not exceed "
                f"READ_WAIT_MS_MAX ({self.read_wait_ms_max})"
            )
        return self


def describe_settings_error(error: ValidationError) -> str:
    """One line per bad variable: its name, what is wrong and (unless secret) the value given."""
    lines = ["invalid configuration:"]
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = f"{field.upper()}: " if field else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        given = item.get("input")
        if field in SECRET_FIELDS or not field or isinstance(given, dict):
            shown = ""
        elif field in URI_FIELDS:
            shown = f" (got {redact(str(given))!r})"
        else:
            shown = f" (got {given!r})"
        lines.append(f"  {name}{message}{shown}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> ApiSettings:
    """Read the environment; raises ValidationError (see ``describe_settings_error``)."""
    return ApiSettings(**overrides)  # type: ignore[arg-type]


def load_settings_or_exit(**overrides: object) -> ApiSettings:
    """Read the environment; on a bad value print which variables are wrong and exit 2."""
    try:
        return load_settings(**overrides)
    except ValidationError as error:
        _exit_with(describe_settings_error(error))


def _exit_with(message: str) -> NoReturn:
    print(f"orders-api: {message}", file=sys.stderr)
    raise SystemExit(2)


@lru_cache(maxsize=1)
def get_settings() -> ApiSettings:
    """The process's settings, read once (cached); the CLI calls ``load_settings_or_exit``."""
    return load_settings()
