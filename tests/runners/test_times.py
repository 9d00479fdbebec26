"""Wire timestamps: RFC 3339 UTC with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.runners.times import format_time, parse_time


def test_format_is_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 25, 23, 40, 1, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-11-25T22:40:01.123Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_time("2026-01-01T00:00:00", "at")


@pytest.mark.parametrize("text", ["", "2026-01-01", "yesterday", 5, None])
def test_garbage_is_refused_naming_the_field(text: object) -> None:
    with pytest.raises(ValueError, match=r"^when: "):
        parse_time(text, "when")


@given(st.datetimes(timezones=st.just(UTC)))
def test_round_trip_to_the_millisecond(moment: datetime) -> None:
    back = parse_time(format_time(moment), "at")
    assert back == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert back.tzinfo is not None
