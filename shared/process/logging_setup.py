"""Process logging: one JSON object per line (``LOG_FORMAT=json``) or readable text.

Every record carries the correlation id of the request or event being handled (a context
variable set by the API middleware and by the projector per event) and, in a process that is
one of several instances (the projector daemon), that instance's id; secrets are redacted:
credentials inside URIs and any value registered with ``register_secret``.

Redaction is for logs. It runs on every access-log line, so it takes time linear in the text
whatever the text is (a client controls the path): one scan for URI credentials that looks at
each character a bounded number of times, and one compiled alternation of the registered
secrets. Response bodies must not go through ``redact``: whether a client's text came back as
``***`` would tell the client that it guessed a secret (see ``redact_uri_credentials``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
MASK = "***"
# A secret shorter than this is not redacted as free text: replacing every "1" of a line because
# a store password is "1" mangles the logs and shows which short strings are secret. Short store
# passwords are still hidden inside URIs (structurally); ADMIN_TOKEN must be longer anyway.
MIN_SECRET_LENGTH = 8
# Runs of text that may hold a URI: URIs end at whitespace and at characters they cannot contain
# unescaped. The run, not the RFC's authority, bounds the user info: a password with an
# unescaped "/" or "?" is still hidden (the whole run between "://" and its last "@" goes).
_RUN = re.compile(r'[^\s"<>`]+')


class _Registered:
    """The registered secrets and the one pattern that finds any of them (replaced whole on
    each registration, so a formatter on another thread sees the old or the new one)."""

    secrets: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def register_secret(value: str | None) -> bool:
    """Never print ``value`` in a log line (e.g. ADMIN_TOKEN). False (and not registered) when
    it is shorter than ``MIN_SECRET_LENGTH``."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return False
    if value not in _Registered.secrets:
        secrets = _Registered.secrets | {value}
        # Longest first, so a secret that contains another one is hidden whole.
        ordered = sorted(secrets, key=lambda s: (-len(s), s))
        _Registered.pattern = re.compile("|".join(re.escape(s) for s in ordered))
        _Registered.secrets = secrets
    return True


def _hide_credentials(run: re.Match[str]) -> str:
    text = run.group()
    start = text.find("://")
    if start < 0:
        return text
    at = text.rfind("@")
    if at < start + 3:
        return text
    return f"{text[: start + 3]}{MASK}{text[at:]}"


def redact_uri_credentials(text: str) -> str:
    """``text`` with the user info of every ``scheme://user:password@host`` masked.

    Depends only on the shape of ``text``, never on which secrets exist, so it may run on text
    a client sent (problem details) without telling the client anything."""
    if "://" not in text or "@" not in text:
        return text
    return _RUN.sub(_hide_credentials, text)


def redact(text: str) -> str:
    """``text`` without URI credentials or registered secrets (for log lines only)."""
    text = redact_uri_credentials(text)
    pattern = _Registered.pattern
    return pattern.sub(MASK, text) if pattern is not None else text


class _ContextFilter(logging.Filter):
    def __init__(self, instance: str | None = None) -> None:
        super().__init__()
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.instance = self.instance
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "color_message" and value is not None:
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, instance: str | None = None) -> None:
        where = f" {instance.replace('%', '%%')}" if instance else ""
        super().__init__(
            f"%(asctime)s %(levelname)-7s{where} %(name)s [%(correlation_id)s] %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", *, instance: str | None = None
) -> None:
    """Configure the root logger once per process (called by each entry point); ``instance``
    names the process in every line (JSON: an ``instance`` field)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(instance))
    handler.addFilter(_ContextFilter(instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).propagate = True
