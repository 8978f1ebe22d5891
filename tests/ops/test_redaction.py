"""Log redaction: linear on any input, URI credentials hidden whatever the password holds, and a
short secret never turned into free-text masking."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid

import pytest

from orders_api.app import create_app
from orders_api.settings import ApiSettings
from shared.process.logging_setup import (
    MIN_SECRET_LENGTH,
    JsonFormatter,
    TextFormatter,
    redact,
    redact_uri_credentials,
    register_secret,
)
from tests.ops.support import closed_port

# Each is ~200 kB and built against the old pattern
# ``[a-z][a-z0-9+.-]*://[^/@\s:]+(:[^/@\s]*)?@`` (which needed about 6.5 s for 20 kB of
# letters, so these took many minutes: quadratic), or against a naive rescan per "://" or "@".
HOSTILE = {
    "letters": "'a' * 200_000",
    "scheme then a long user info without @": "'a://' + 'b' * 100_000 + ':' + 'c' * 100_000",
    "many schemes": "'a://' * 50_000",
    "many schemes after an @": "'x@' + 'b://' * 50_000",
    "many user infos": "'a://b:c@' * 25_000",
    "colons": "'a://b' + ':' * 200_000",
    "near misses of a secret": "'x' * 200_000",
    "a path": "'/nope/' + 'a1/' * 67_000",
}
# Generous: the new code needs milliseconds for all of them together. This only stops a hang
# from stalling the suite; it is not a speed requirement.
HANG_GUARD_S = 120


def test_redaction_finishes_on_hostile_input() -> None:
    script = textwrap.dedent(
        f"""
        from shared.process.logging_setup import redact, register_secret
        register_secret("x" * 40 + "y")
        inputs = {{{", ".join(f"{name!r}: {code}" for name, code in HOSTILE.items())}}}
        for name, text in inputs.items():
            assert len(text) >= 200_000, name
            redacted = redact(text)
            assert len(redacted) <= len(text) + 3, name
            print("done", name, flush=True)
        """
    )
    try:
        finished = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
            check=False,
        )
    except subprocess.TimeoutExpired as stuck:
        done = stuck.stdout.decode() if isinstance(stuck.stdout, bytes) else stuck.stdout
        raise AssertionError(f"redaction hung; finished before that: {done}") from None
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.count("done") == len(HOSTILE)


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("esdb://admin:changeit@db:2113?tls=false", "changeit", "esdb://***@db:2113?tls=false"),
        ("esdb://:secretLEAK1@db:2113", "secretLEAK1", "esdb://***@db:2113"),
        ("esdb://user:pa/ssLEAK1@127.0.0.1:41271", "ssLEAK1", "esdb://***@127.0.0.1:41271"),
        ("mongodb://u:p?w#LEAK1@h/db", "LEAK1", "mongodb://***@h/db"),
        (
            "at mongodb://u:pw1LEAK@h:1/?x=1 and esdb://v:pw2LEAK@g:2 done",
            "LEAK",
            "at mongodb://***@h:1/?x=1 and esdb://***@g:2 done",
        ),
        ("\"mongodb://u:inQuotesLEAK@h\", 'x'", "LEAK", "\"mongodb://***@h\", 'x'"),
    ],
)
def test_uri_credentials_are_hidden_whatever_the_password_holds(
    text: str, secret: str, expected: str
) -> None:
    assert redact_uri_credentials(text) == expected
    assert secret not in redact(text)


def test_text_without_credentials_is_left_alone() -> None:
    text = "GET /orders/1?cursor=a://b 200; see https://example.org/x and a@b.c"
    assert redact_uri_credentials(text) == text


def _printed(message: str, *args: object) -> str:
    record = logging.LogRecord("x", logging.INFO, "", 0, message, args, None)
    record.correlation_id = None
    return TextFormatter().format(record) + "\n" + JsonFormatter().format(record)


def test_a_short_store_password_does_not_mangle_the_logs() -> None:
    create_app(
        ApiSettings(
            eventstore_uri=f"esdb://admin:1@127.0.0.1:{closed_port()}?Tls=false",
            mongo_uri=f"mongodb://app:1@127.0.0.1:{closed_port()}/?directConnection=true",
        )
    )
    printed = _printed("order 1 of 10 at %s", "mongodb://app:1@db:27017/")
    assert "order 1 of 10 at mongodb://***@db:27017/" in printed
    assert ":1@" not in printed


def test_short_secrets_are_refused_and_long_ones_hidden_whole() -> None:
    assert not register_secret("x" * (MIN_SECRET_LENGTH - 1))
    inner = f"in-{uuid.uuid4().hex}"
    outer = f"{inner}-and-more"
    assert register_secret(inner) and register_secret(outer)
    assert redact(f"[{outer}] [{inner}]") == "[***] [***]"
    assert "x" * (MIN_SECRET_LENGTH - 1) in redact("x" * (MIN_SECRET_LENGTH - 1))
