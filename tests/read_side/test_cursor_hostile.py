"""Hostile cursors: whatever a client puts in ``?cursor=``, ``decode_cursor`` either returns a
cursor or raises ``MalformedCursor`` (a 400), never anything else (a 500).

A table of crafted inputs (one per way a cursor can be wrong) and a seeded sweep of generated
ones: every JSON shape in the three slots, every single-character change of a valid cursor, and
random bytes. The sweep is deterministic (fixed seed) so a failure reproduces.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from read_side.pagination import MalformedCursor, PageCursor, decode_cursor, encode_cursor

VALID = encode_cursor(PageCursor(datetime(2025, 3, 1, 12, 30, tzinfo=UTC), "order-1"))
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(raw: bytes | str) -> str:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def as_cursor(payload: Any) -> str:
    return b64(json.dumps(payload, separators=(",", ":")))


CRAFTED = {
    "date overflows past 9999 in UTC": b64('[1,"9999-12-31T23:59:59-23:59","x"]'),
    "date overflows before year 1 in UTC": b64('[1,"0001-01-01T00:00:00+23:59","x"]'),
    "huge version": b64("[" + "9" * 400 + ',"2025-03-01T12:00:00+00:00","x"]'),
    "int beyond the str digits limit": b64("[" + "9" * 300 + "]"),
    "float version": b64('[1.0,"2025-03-01T12:00:00+00:00","x"]'),
    "true as version": b64('[true,"2025-03-01T12:00:00+00:00","x"]'),
    "infinite float": b64('[1e999,"2025-03-01T12:00:00+00:00","x"]'),
    "NaN": b64('[NaN,"2025-03-01T12:00:00+00:00","x"]'),
    "date as number": b64('[1,20250301,"x"]'),
    "id as number": b64('[1,"2025-03-01T12:00:00+00:00",7]'),
    "id as null": b64('[1,"2025-03-01T12:00:00+00:00",null]'),
    "nested arrays": b64('[[1],["2025-03-01T12:00:00+00:00"],["x"]]'),
    "deeply nested": b64("[" * 120 + "]" * 120),
    "object of three keys": b64('{"a":1,"b":2,"c":3}'),
    "three-letter string": b64('"abc"'),
    "four items": b64('[1,"2025-03-01T12:00:00+00:00","x","y"]'),
    "naive date": b64('[1,"2025-03-01T12:00:00","x"]'),
    "date with garbage": b64('[1,"2025-13-45T99:99:99+00:00","x"]'),
    "offset beyond a day": b64('[1,"2025-03-01T12:00:00+24:00","x"]'),
    "lone surrogate id": b64('[1,"2025-03-01T12:00:00+00:00","\\ud800"]'),
    "lone surrogate date": b64('[1,"2025-03-01T12:00:00+00:00\\udfff","x"]'),
    "not UTF-8": b64(b'[1,"\xff\xfe","x"]'),
    "not UTF-8 at all": b64(b"\xc3\x28\xa0\xa1\xe2\x28\xa1"),
    "bad base64 characters": "!!!$$$***",
    "base64 with a lone char": "A",
    "padding in the middle": "WzE=sIjk5",
    "non-ASCII text": "é" * 10,
    "NUL characters": "\x00" * 10,
    "very long": "A" * 100_000,
    "just over the length bound": VALID + "A" * 600,
    "empty": "",
    "empty JSON": b64(""),
    "JSON null": b64("null"),
}


@pytest.mark.parametrize("text", list(CRAFTED.values()), ids=list(CRAFTED))
def test_a_crafted_cursor_is_refused_with_the_one_error(text: str) -> None:
    with pytest.raises(MalformedCursor, match="malformed cursor"):
        decode_cursor(text)


def _json_values(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    scalars: list[Any] = [
        None,
        rng.choice([True, False]),
        rng.randint(-(10**30), 10**30),
        rng.uniform(-1e308, 1e308),
        rng.choice(["", "x", "\ud800", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00+12:00"]),
        datetime(rng.randint(1, 9999), 1, 1, tzinfo=UTC).isoformat(),
    ]
    if choice < len(scalars):
        return scalars[choice]
    if choice == 6:
        return [_json_values(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 7:
        return {str(i): _json_values(rng, depth + 1) for i in range(rng.randrange(3))}
    return rng.randint(0, 2)


def _generated(seed: int = 12) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(2000):  # JSON of any shape in the cursor's three slots
        yield as_cursor([_json_values(rng) for _ in range(rng.choice([1, 2, 3, 3, 3, 4]))])
    for index in range(len(VALID)):  # every single-character change of a valid cursor
        for char in rng.sample(ALPHABET, 8):
            yield VALID[:index] + char + VALID[index + 1 :]
    for _ in range(1000):  # random bytes, and random text
        yield b64(rng.randbytes(rng.randrange(1, 300)))
        yield "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 80)))


def test_every_generated_cursor_decodes_or_is_refused_with_the_one_error() -> None:
    decoded = 0
    for text in _generated():
        try:
            cursor = decode_cursor(text)
        except MalformedCursor:
            continue
        # Whatever decodes is a cursor the read side can use: aware, UTC, a storable id.
        decoded += 1
        assert cursor.created_at.tzinfo is UTC
        assert cursor.order_id
        cursor.order_id.encode()
        assert decode_cursor(encode_cursor(cursor)) == cursor
    assert decoded > 0  # the sweep reaches the decoding path, not only the refusals


def test_a_valid_cursor_still_round_trips() -> None:
    assert decode_cursor(VALID) == PageCursor(datetime(2025, 3, 1, 12, 30, tzinfo=UTC), "order-1")
