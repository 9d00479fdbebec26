"""The retry schedule of a notification: exponential from 2 s, doubling, capped, bounded."""

from __future__ import annotations

from datetime import datetime, timedelta

BASE_SECONDS = 2.0
CAP_SECONDS = 600.0
MAX_ATTEMPTS = 8


def delay(attempts: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1 -> 2 s, 2 -> 4 s, ...)."""
    if attempts < 1:
        raise ValueError("attempts counts failed attempts and starts at 1")
    return float(min(cap, base * 2 ** min(attempts - 1, 64)))


def next_attempt(attempts: int, now: datetime, max_attempts: int = MAX_ATTEMPTS) -> datetime | None:
    """When to try again after ``attempts`` failures, or None once the attempts are used up."""
    if attempts >= max_attempts:
        return None
    return now + timedelta(seconds=delay(attempts))


def schedule(max_attempts: int = MAX_ATTEMPTS) -> list[float]:
    """Every wait between attempts, in order (``max_attempts - 1`` of them)."""
    return [delay(n) for n in range(1, max_attempts)]
