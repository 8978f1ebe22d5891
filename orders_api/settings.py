"""Settings of the API process, read from the environment (pydantic-settings).

A bad value stops the process at start-up with one line per bad variable, naming it and saying
what is expected; secrets (``ADMIN_TOKEN``, credentials inside URIs) are never echoed.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.adapters.esdb_event_store import BUDGET_S as STORE_TIMEOUT_S
from shared.process.settings_base import StoreSettings, load_or_exit
from write_side.order_cache import MAX_CACHED_ORDERS

Port = Annotated[int, Field(ge=1, le=65535)]
# Long enough not to be guessed, and to be redacted from logs as free text (MIN_SECRET_LENGTH);
# bounded so comparing and redacting it stays cheap.
ADMIN_TOKEN_MIN = 16
ADMIN_TOKEN_MAX = 1024


class ApiSettings(StoreSettings):
    """Everything the API process reads from its environment."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"admin_token"})

    api_host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    api_port: Port = 8000
    admin_token: Annotated[
        SecretStr | None,
        Field(
            description=f"bearer token of the admin endpoints: {ADMIN_TOKEN_MIN} to "
            f"{ADMIN_TOKEN_MAX} characters without leading or trailing whitespace (only "
            "whitespace is a start-up error); unset or empty disables them",
        ),
    ] = None
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 65536
    read_wait_ms_default: Annotated[int, Field(ge=0)] = 2000
    # The read side never waits longer than 10 s (MAX_WAIT_MS); operators may lower it.
    read_wait_ms_max: Annotated[int, Field(ge=0, le=10_000)] = 10_000
    startup_wait_s: Annotated[float, Field(ge=0, le=600)] = 60.0
    # Decide-append rounds a command may take before a conflict answers 409. Each lost round
    # means another command on the same order committed since this one read it, so with n
    # concurrent writers n rounds always suffice; 30 covers bursts well past 20 per order.
    command_max_attempts: Annotated[int, Field(ge=1, le=100)] = 30
    # Orders whose decided state a process keeps so that a command on one skips reading its
    # stream (write_side.order_cache; the append's compare-and-set keeps it correct across
    # processes). 0 keeps none: every command on an existing order reads it.
    command_cache_orders: Annotated[int, Field(ge=0, le=1_000_000)] = MAX_CACHED_ORDERS
    # Rebuilds started over HTTP keep the version they replaced readable this long (the same
    # variable as the projector's, so both kinds of rebuild behave alike).
    projector_retire_grace_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    # How long one call to a store may take, retries included, before the request is answered
    # 503 with Retry-After: a store that stops answering must not hold requests for a minute.
    store_timeout_s: Annotated[float, Field(gt=0, le=120)] = STORE_TIMEOUT_S
    # How old the projection figures of /health/ready and /metrics may get before the next
    # probe or scrape reads them again (orders_api.projection_report): however many arrive, the
    # stores are read at most once per interval. 0 reads at every call (one reading at a time).
    projection_report_ttl_s: Annotated[float, Field(ge=0, le=300)] = 5.0
    # Bounds on what clients may hold (see orders_api.server): beyond each, a deliberate
    # refusal (503 + Retry-After, 408, or a closed connection) and one throttled log line.
    read_wait_max_waiters: Annotated[int, Field(ge=1, le=100_000)] = 500
    api_limit_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 1000
    api_max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    api_backlog: Annotated[int, Field(ge=1, le=65535)] = 2048
    api_keepalive_timeout_s: Annotated[int, Field(ge=1, le=300)] = 5
    api_header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    api_body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_disables_admin(cls, value: object) -> object:
        # compose passes ADMIN_TOKEN="" when it is unset: that means "admin disabled". Only
        # the empty string does: a token of spaces is a mistake, not a way to turn admin off.
        return None if value == "" else value

    @field_validator("admin_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        token = value.get_secret_value()
        if not token.strip():
            raise ValueError("is only whitespace; leave it empty or unset to disable admin")
        if token != token.strip():
            # Clients' header values lose surrounding whitespace: such a token never matches.
            raise ValueError("must not start or end with whitespace")
        if len(token) < ADMIN_TOKEN_MIN:
            raise ValueError(
                f"must be at least {ADMIN_TOKEN_MIN} characters (or unset to disable admin)"
            )
        if len(token) > ADMIN_TOKEN_MAX:
            raise ValueError(f"must be at most {ADMIN_TOKEN_MAX} characters")
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
