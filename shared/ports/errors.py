"""The error every port raises when its store cannot answer: the same for both stores."""

from __future__ import annotations

from shared.errors import ServiceError


class StoreUnavailable(ServiceError):
    """A store could not be reached within the retry budget. Safe to retry later."""

    def __init__(self, store: str, reason: str, retry_after_s: int = 1) -> None:
        self.store = store
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(f"{store} unavailable: {reason}")
