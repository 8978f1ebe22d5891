"""What the soak clients saw: every acknowledged command, every retry, every odd answer.

One ``Record`` is shared by all clients of a run (asyncio: no locks needed). Commands go through
``Record.send``, which applies the client retry policy: a 503 with ``Retry-After`` or a
connection error is retried with the same request (same ``Idempotency-Key``: the API answers the
first result if the first try was applied), within a bounded budget.

Reads with a token are counted fresh or stale (``X-Read-Model-Stale``), a 404 as well (the order
not projected yet), overall and by the ``phase`` of the run they were answered in (set by the
fault injector: a fault, its aftermath, or ``steady``).

The same figures are kept per ``Window`` of the run as well (``Record.take_window`` ends one):
commands acknowledged, reads with a token fresh or stale, and how long each answer took
(``COMMAND``: a command's first try to its final answer, retries included; ``TOKEN_GET`` and
``PLAIN_GET``: one query with and without ``X-Consistency-Token``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.soak.http import ApiClient, Response

RETRY_BUDGET_S = 120.0  # one command may be retried this long (store outages last seconds)
RETRY_AFTER_CAP_S = 5.0  # never sleep longer than this on one Retry-After
CONNECTION_RETRY_S = 0.2
STEADY = "steady"  # the phase of a run while no fault or its aftermath is going on
COMMAND, TOKEN_GET, PLAIN_GET = "command", "token GET", "GET"  # kinds of answer timed


@dataclass(frozen=True)
class Ack:
    """A command answered 2xx: the order's stream revision and commit position it answered."""

    command: str
    order_id: str
    version: int
    position: int


@dataclass
class Window:
    """What the clients saw from ``started`` (``time.monotonic``) until the window was taken."""

    started: float = field(default_factory=time.monotonic)
    acks: int = 0
    token_reads: Counter[str] = field(default_factory=Counter)  # fresh / stale
    seconds: dict[str, list[float]] = field(default_factory=dict)  # kind -> answer times

    def timed(self, kind: str, seconds: float) -> None:
        self.seconds.setdefault(kind, []).append(seconds)


def server_error_kind(response: Response) -> str:
    if response.status_code == 503 and response.headers.get("Retry-After"):
        return "503 with Retry-After"
    return (
        f"{response.status_code} without Retry-After"
        if response.status_code == 503
        else str(response.status_code)
    )


@dataclass
class Record:
    acks: list[Ack] = field(default_factory=list)
    retries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # "create 201", "get-order 200", ...
    server_errors: Counter[str] = field(default_factory=Counter)
    server_error_samples: list[str] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)  # requests that got no answer, by error
    token_reads: Counter[str] = field(default_factory=Counter)  # fresh / stale
    token_reads_by_phase: dict[str, Counter[str]] = field(default_factory=dict)
    phase: str = STEADY  # what the faults are doing now (``enter``)
    phase_seconds: dict[str, float] = field(default_factory=dict)  # time spent in each phase
    phase_since: float | None = field(default_factory=time.monotonic)  # None: traffic over
    violations: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # order -> highest version acked
    stopped: bool = False
    window: Window = field(default_factory=Window)  # the current one (``take_window``)

    def take_window(self) -> Window:
        """End the current window and start the next: the one ended."""
        ended, self.window = self.window, Window()
        return ended

    @property
    def events_acknowledged(self) -> int:
        """A lower bound of the events in the log: the revisions acknowledged, per order."""
        return sum(version + 1 for version in self.versions.values())

    @property
    def last_position(self) -> int:
        return max((ack.position for ack in self.acks), default=0)

    def note(self, label: str, response: Response, request: str) -> None:
        self.statuses[f"{label} {response.status_code}"] += 1
        if response.status_code >= 500:
            kind = server_error_kind(response)
            self.server_errors[kind] += 1
            if kind != "503 with Retry-After" and len(self.server_error_samples) < 20:
                self.server_error_samples.append(
                    f"{request} -> {response.status_code} {response.text[:300]}"
                )

    def enter(self, phase: str | None) -> None:
        """From now on the run is in ``phase`` (None: the traffic is over)."""
        now = time.monotonic()
        if self.phase_since is not None:
            spent = self.phase_seconds.get(self.phase, 0.0) + now - self.phase_since
            self.phase_seconds[self.phase] = spent
        self.phase_since = None if phase is None else now
        self.phase = self.phase if phase is None else phase

    def stale_share(self, phase: str | None = None) -> tuple[int, int]:
        """(stale, all) reads with a token, in ``phase`` or overall."""
        counts = self.token_reads if phase is None else self.token_reads_by_phase.get(phase)
        counts = counts or Counter()
        return counts["stale"], counts["stale"] + counts["fresh"]

    def violation(self, message: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(message)

    async def get(self, api: ApiClient, label: str, path: str, **kwargs: Any) -> Response | None:
        """A query, not retried (a client would just ask again later)."""
        kind = TOKEN_GET if "X-Consistency-Token" in kwargs.get("headers", {}) else PLAIN_GET
        sent = time.monotonic()
        try:
            response = await api.get(path, **kwargs)
        except httpx.TransportError as error:
            self.dropped[f"{label}: {type(error).__name__}"] += 1
            return None
        self.window.timed(kind, time.monotonic() - sent)
        self.note(label, response, f"GET {path}")
        return response

    async def send(
        self,
        api: ApiClient,
        label: str,
        method: str,
        path: str,
        *,
        key: str,
        body: dict[str, Any] | None = None,
        if_match: int | None = None,
    ) -> Response | None:
        """One command under the retry policy; a 2xx is recorded as an ``Ack``. None when it
        never got a final answer within the retry budget."""
        headers = {"Idempotency-Key": key}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        sent = time.monotonic()
        deadline = sent + RETRY_BUDGET_S
        while True:
            try:
                response = await api.request(method, path, json=body, headers=headers)
            except httpx.TransportError as error:
                self.dropped[f"{label}: {type(error).__name__}"] += 1
                if time.monotonic() > deadline:
                    self.violation(f"{label} {path}: no answer within {RETRY_BUDGET_S} s")
                    return None
                self.retries += 1
                await asyncio.sleep(CONNECTION_RETRY_S)  # back-off before trying again
                continue
            self.note(label, response, f"{method} {path}")
            retry_after = response.headers.get("Retry-After")
            if response.status_code == 503 and retry_after and time.monotonic() < deadline:
                self.retries += 1
                await asyncio.sleep(min(float(retry_after), RETRY_AFTER_CAP_S))
                continue
            self.window.timed(COMMAND, time.monotonic() - sent)
            if response.is_success:
                self._acknowledged(label, response)
            return response

    def _acknowledged(self, label: str, response: Response) -> None:
        body = response.json()
        ack = Ack(label, str(body["order_id"]), int(body["version"]), int(body["position"]))
        etag, token = response.headers.get("ETag"), response.headers.get("X-Consistency-Token")
        if etag != f'"{ack.version}"' or token != str(ack.position):
            self.violation(f"{label}: headers ETag={etag} token={token} disagree with {body}")
        self.acks.append(ack)
        self.window.acks += 1
        self.versions[ack.order_id] = max(self.versions.get(ack.order_id, -1), ack.version)

    def token_read(self, label: str, response: Response, order: Ack | None) -> bool:
        """Check a read made with ``order.position`` as its token; True when it was fresh and
        found.

        A fresh answer (``X-Read-Model-Stale: false``) must show the order at least at the
        version acknowledged with that token: older data there, or a 404, is a lost update. A
        stale 404 (the order not projected yet) counts as a stale read."""
        if response.status_code not in (200, 404):
            return False
        stale = response.headers.get("X-Read-Model-Stale")
        if stale not in ("true", "false"):
            self.violation(f"{label}: X-Read-Model-Stale={stale!r} on a read with a token")
            return False
        freshness = "stale" if stale == "true" else "fresh"
        self.token_reads[freshness] += 1
        self.window.token_reads[freshness] += 1
        self.token_reads_by_phase.setdefault(self.phase, Counter())[freshness] += 1
        if stale == "true":
            return False
        if response.status_code == 404:
            if order is not None:
                self.violation(f"{label}: fresh 404 for acknowledged order {order.order_id}")
            return False
        if order is not None and int(response.json().get("version", -1)) < order.version:
            self.violation(
                f"{label}: fresh read of {order.order_id} with token {order.position} shows "
                f"version {response.json().get('version')}, acknowledged {order.version}"
            )
        return True
