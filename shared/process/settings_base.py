"""What every process's settings share: the two stores, logging, and clear start-up errors.

Each process has its own pydantic-settings class deriving from ``StoreSettings``. A bad value
stops the process at start-up (exit code 2) with one line per bad variable, naming it and saying
what is expected. The value given is echoed only for plain settings: never for a secret nor for a
store URI, whose password may be anywhere in the text when the URI is malformed (an unescaped
"/" in a password ends the authority early), so no pattern could be trusted to find it.
"""

from __future__ import annotations

import sys
from typing import Annotated, ClassVar, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EVENTSTORE_SCHEMES = ("esdb", "esdb+discover")
MONGO_SCHEMES = ("mongodb", "mongodb+srv")
URI_FIELDS = frozenset({"eventstore_uri", "mongo_uri"})
# MongoDB database names: no path separators, dots, spaces, quotes or shell metacharacters.
_MONGO_DATABASE = r'^[^/\\. "$*<>:|?\x00]{1,63}$'


def check_uri(value: str, schemes: tuple[str, ...]) -> str:
    """``value`` when it is a URI with one of ``schemes`` and one or more hosts (a cluster's
    seeds or a replica set's members: ``host1:port,host2:port``), each with a valid port or none.

    No message quotes any part of ``value``: it may hold a password."""
    try:
        parts = urlsplit(value)
    except ValueError:
        # urlsplit's own message may quote the netloc, password included.
        raise ValueError("not a valid URI") from None
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in schemes)}")
    if not parts.netloc or not parts.hostname:
        raise ValueError("a host is required, e.g. " + schemes[0] + "://127.0.0.1")
    for host in parts.netloc.rpartition("@")[2].split(","):
        _check_host(host, schemes[0])
    if parts.password is not None and not parts.username:
        raise ValueError("the user name before the password is empty")
    if "@" in value.partition("://")[2][len(parts.netloc) :]:
        # "user:pa/ss@host": the "/" ended the authority, so the driver would see another host
        # and a path holding the rest of the password.
        raise ValueError(
            'an "@" after the host: percent-encode "/", "?", "#" and "@" inside the user name '
            'and password (e.g. "/" as %2F)'
        )
    return value


def _check_host(host: str, scheme: str) -> None:
    """One ``host[:port]`` of a URI's host list."""
    try:
        parts = urlsplit(f"{scheme}://{host}")
        port = parts.port
    except ValueError:
        raise ValueError("each port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("a host list holds an empty host, e.g. two commas in a row")
    if port == 0:
        raise ValueError("each port must be a number from 1 to 65535")


class StoreSettings(BaseSettings):
    """The stores and logging; subclasses add their process's own settings."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    eventstore_uri: str = "esdb://127.0.0.1:2113?Tls=false"
    mongo_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_database: Annotated[str, Field(pattern=_MONGO_DATABASE)] = "orders"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("eventstore_uri")
    @classmethod
    def _eventstore_scheme(cls, value: str) -> str:
        return check_uri(value, EVENTSTORE_SCHEMES)

    @field_validator("mongo_uri")
    @classmethod
    def _mongo_scheme(cls, value: str) -> str:
        return check_uri(value, MONGO_SCHEMES)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def describe_settings_error(
    error: ValidationError, secret_fields: frozenset[str] = frozenset()
) -> str:
    """One line per bad variable: its name, what is wrong and (unless a secret or a store URI)
    the value given. Messages are pydantic's or our validators', which never quote a value."""
    hidden = secret_fields | URI_FIELDS
    lines = ["invalid configuration:"]
    for item in error.errors(include_input=True, include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        name = f"{field.upper()}: " if field else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        given = item.get("input")
        if field in hidden or not field or isinstance(given, dict):
            shown = ""
        else:
            shown = f" (got {given!r})"
        lines.append(f"  {name}{message}{shown}")
    return "\n".join(lines)


def load_or_exit[S: StoreSettings](settings: type[S], program: str, **overrides: object) -> S:
    """Read the environment; on a bad value print which variables are wrong and exit 2."""
    try:
        return settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        exit_with(program, describe_settings_error(error, settings.secret_fields))


def exit_with(program: str, message: str) -> NoReturn:
    print(f"{program}: {message}", file=sys.stderr)
    raise SystemExit(2)
