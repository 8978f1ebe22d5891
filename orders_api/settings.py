"""Settings of the API process, read from the environment (pydantic-settings).

A bad value stops the process at start-up with one line per bad variable, naming it and saying
what is expected; secrets (``ADMIN_TOKEN``, credentials inside URIs) are never echoed.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings_base import StoreSettings, load_or_exit

Port = Annotated[int, Field(ge=1, le=65535)]


class ApiSettings(StoreSettings):
    """Everything the API process reads from its environment."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"admin_token"})

    api_host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    api_port: Port = 8000
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


def load_settings_or_exit(**overrides: object) -> ApiSettings:
    """Read the environment; on a bad value print which variables are wrong and exit 2."""
    return load_or_exit(ApiSettings, "orders-api", **overrides)
