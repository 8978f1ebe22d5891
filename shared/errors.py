"""The project's own error types. Adapters translate driver errors into these at their edge."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error this service raises on purpose."""


class ConcurrencyError(ServiceError):
    """The stream moved on since it was read: the expected revision no longer holds."""

    def __init__(self, stream: str, expected: object, actual: int | None = None) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(f"stream {stream!r}: expected revision {expected}, actual {actual}")


class StreamNotFound(ServiceError):
    """The stream has no events (never written, or deleted)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"stream {stream!r} not found")


class StoreUnavailable(ServiceError):
    """A store could not be reached within the retry budget. Safe to retry later."""

    def __init__(self, store: str, reason: str, retry_after_s: int = 1) -> None:
        self.store = store
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(f"{store} unavailable: {reason}")


class HandlerAlreadyRegistered(ServiceError):
    """A message type was registered twice on one bus."""


class NoHandlerRegistered(ServiceError):
    """A message was dispatched whose type no handler is registered for."""


class UnknownEventType(ServiceError):
    """A stored event has a type or schema version the registry does not know."""
