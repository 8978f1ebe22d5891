"""``added``, the one way a projection adds to a stored sum: exact whatever the size, and always
storable (an int within int64, the exact decimal string beyond; see
``shared/contract/read_model_sums.py``)."""

from __future__ import annotations

import bson
import pytest

from projector.projections.operations import added
from shared.contract.read_model_sums import INT64_MAX, INT64_MIN, sum_of


def test_a_sum_within_int64_stays_an_int() -> None:
    assert added({"EUR": INT64_MAX - 5}, "EUR", 5) == {"EUR": INT64_MAX}
    assert added({}, "EUR", 7) == {"EUR": 7}
    assert added({"draft": 1}, "draft", -1) == {"draft": 0}
    assert added({"x": INT64_MIN + 1}, "x", -1) == {"x": INT64_MIN}


@pytest.mark.parametrize(
    ("before", "amount"),
    [(INT64_MAX, 1), (INT64_MAX - 3, 10**17), (str(INT64_MAX + 10), 10**17), (INT64_MIN, -1)],
    ids=["just-beyond", "far-beyond", "already-beyond", "below-int64-min"],
)
def test_a_sum_beyond_int64_is_its_exact_decimal_string(before: int | str, amount: int) -> None:
    counters = {"EUR": before, "USD": 3}
    result = added(counters, "EUR", amount)
    exact = int(before) + amount
    assert result == {"EUR": str(exact), "USD": 3}
    assert sum_of(result["EUR"]) == exact
    assert counters == {"EUR": before, "USD": 3}, "the counters given are not changed"


def test_a_sum_coming_back_within_int64_is_an_int_again() -> None:
    assert added({"x": str(INT64_MAX + 1)}, "x", -1) == {"x": INT64_MAX}


def test_every_sum_added_can_be_stored_in_a_bson_document() -> None:
    """What MongoDB refused before: an int beyond int64 has no BSON encoding."""
    counters: dict[str, object] = {}
    for _ in range(INT64_MAX // 10**17 + 2):
        counters = added(counters, "EUR", 10**17)
        assert bson.decode(bson.encode({"sums": counters})) == {"sums": counters}


@pytest.mark.parametrize("stored", [1.5, True, "1e3", "12 ", "1_000", "", "٣", None])
def test_a_stored_value_that_is_not_a_sum_is_refused(stored: object) -> None:
    with pytest.raises(ValueError, match="not a stored sum"):
        sum_of(stored)
    with pytest.raises(ValueError, match="not a stored sum"):
        added({"x": stored}, "x", 1)
