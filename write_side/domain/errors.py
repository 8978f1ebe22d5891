"""Errors the orders domain raises. A raised error means nothing was decided: no events."""

from __future__ import annotations

from uuid import UUID

from shared.errors import ServiceError


class RuleViolation(ServiceError):
    """A command broke a business rule. ``rule`` is a stable snake_case name clients may match."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        self.message = message
        super().__init__(f"{rule}: {message}")


class OrderNotFound(ServiceError):
    """The command addresses an order that was never created."""

    def __init__(self, order_id: UUID) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} not found")
