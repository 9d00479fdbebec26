"""The retry schedule: 2 s doubling, capped at 10 minutes, 8 attempts in all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.approvals import backoff

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_schedule_doubles_from_two_seconds() -> None:
    assert backoff.schedule() == [2, 4, 8, 16, 32, 64, 128]
    assert backoff.MAX_ATTEMPTS == 8


def test_next_attempt_until_the_attempts_are_used_up() -> None:
    assert backoff.next_attempt(1, NOW) == NOW + timedelta(seconds=2)
    assert backoff.next_attempt(7, NOW) == NOW + timedelta(seconds=128)
    assert backoff.next_attempt(8, NOW) is None
    assert backoff.next_attempt(3, NOW, max_attempts=3) is None


def test_the_cap_holds_for_long_schedules() -> None:
    assert backoff.delay(10) == 600
    assert backoff.delay(10_000) == 600
    with pytest.raises(ValueError, match="starts at 1"):
        backoff.delay(0)


@given(st.integers(1, 500))
def test_delays_never_shrink_and_never_pass_the_cap(attempts: int) -> None:
    assert 2 <= backoff.delay(attempts) <= backoff.delay(attempts + 1) <= backoff.CAP_SECONDS
