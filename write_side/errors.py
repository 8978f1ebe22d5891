"""Errors the write side raises to its callers (the HTTP API maps each to one status)."""

from __future__ import annotations

from uuid import UUID

from shared.errors import ServiceError
from write_side.domain.errors import OrderNotFound, RuleViolation
from write_side.domain.rules import Rule

__all__ = ["IdempotencyKeyReused", "OrderNotFound", "RuleViolation", "VersionMismatch"]


class VersionMismatch(ServiceError):
    """The client pinned ``expected`` (``If-Match``) but the order is at ``actual``.

    ``actual`` is None when the order's stream does not exist (or is unknown).
    """

    def __init__(self, order_id: UUID, expected: int, actual: int | None) -> None:
        self.order_id = order_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"order {order_id}: expected version {expected}, actual {actual}")


class IdempotencyKeyReused(RuleViolation):
    """The idempotency key was already used on this order for a different request.

    A RuleViolation (rule ``idempotency_key_reused``), so callers that map rule violations
    handle it without knowing it; they may still single it out (e.g. as 422).
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            Rule.IDEMPOTENCY_KEY_REUSED,
            f"idempotency key {key!r} was already used on this order for a different request",
        )
