"""If-Match and Idempotency-Key parsing, without HTTP."""

from __future__ import annotations

import pytest

from shared.web.problem_details import ProblemError
from write_side.http.preconditions import checked_idempotency_key, expected_version_from_if_match


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, None),
        ("*", None),
        (" * ", None),
        ('"0"', 0),
        ('"42"', 42),
        ('"42", "42"', 42),
        (', "7" ,', 7),
        ('W/"7", "8"', 8),
        ('"a,b", "9"', 9),
    ],
)
def test_a_version_is_read_from_if_match(header: str | None, version: int | None) -> None:
    assert expected_version_from_if_match(header) == version


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("", 400),
        ("7", 400),
        ('"7', 400),
        ("W/7", 400),
        ('"1";"2"', 400),
        ('"1", "2"', 400),
        ('W/"1"', 412),
        ('"v1"', 412),
        ('"007"', 412),
        ('"99999999999999999999"', 412),
    ],
)
def test_if_match_that_pins_no_single_version_is_refused(header: str, status: int) -> None:
    with pytest.raises(ProblemError) as refused:
        expected_version_from_if_match(header)
    assert refused.value.status == status


@pytest.mark.parametrize(
    "key", ["0123456789abcdef", "5d0c3a9e-8f1b-4c47-a1d2-9e0b7f6c3a21", "a" * 255]
)
def test_a_valid_idempotency_key_passes(key: str) -> None:
    assert checked_idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "0123456789abcde", "a" * 256, "0123456789 abcdef", "k\n" * 10])
def test_an_invalid_idempotency_key_is_400(key: str) -> None:
    with pytest.raises(ProblemError) as refused:
        checked_idempotency_key(key)
    assert refused.value.status == 400
