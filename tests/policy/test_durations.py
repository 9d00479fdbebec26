"""Durations in decisions: the forms policies write, and clear errors for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.policy.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("4h", 14400), ("2d", 172800), ("1h30m", 5400), (86400, 86400)],
)
def test_the_documented_forms(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "not a duration"),
        ("4x", "not a duration"),
        ("30m1h", "not a duration"),
        ("-5s", "not a duration"),
        (0, "longer than zero"),
        ("0s", "longer than zero"),
        (-1, "longer than zero"),
        (1.5, "must be a duration"),
        (True, "must be a duration"),
        (None, "must be a duration"),
        ("367d", "longest allowed"),
    ],
)
def test_malformed_durations_say_why(value: object, problem: str) -> None:
    with pytest.raises(DurationError, match=problem):
        parse_duration(value)


@given(st.integers(min_value=1, max_value=366 * 86400))
def test_formatting_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
