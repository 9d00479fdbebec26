"""Durations in decisions: ``"90s"``, ``"30m"``, ``"4h"``, ``"2d"``, ``"1h30m"`` or whole seconds.

Policies write how long an approval request stays open (``expires_in``) and when it
escalates (``escalate_to.after``) in this form; placet stores whole seconds.
"""

from __future__ import annotations

import re
from typing import Any

MAX_SECONDS = 366 * 24 * 3600
UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_FORM = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class DurationError(ValueError):
    """A value that is not a duration; the message says what is expected."""


def parse_duration(value: Any) -> int:
    """``value`` in whole seconds: a positive integer, or a string of ``<n>d<n>h<n>m<n>s``
    parts in that order (each optional, at least one), e.g. ``"1h30m"``; at most 366 days."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DurationError(
            'must be a duration such as "90s", "30m", "4h", "2d", "1h30m" or whole seconds'
        )
    if isinstance(value, int):
        seconds = value
    else:
        match = _FORM.fullmatch(value.strip())
        if not value.strip() or match is None:
            raise DurationError(
                f'{value!r} is not a duration: write "90s", "30m", "4h", "2d", "1h30m" '
                "(days, hours, minutes, seconds, in that order) or whole seconds"
            )
        seconds = sum(
            int(amount) * factor
            for amount, factor in zip(match.groups(), UNITS.values(), strict=True)
            if amount is not None
        )
    if seconds <= 0:
        raise DurationError(f"{value!r} must be longer than zero")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{value!r} is longer than the longest allowed, 366d")
    return seconds


def format_duration(seconds: int) -> str:
    """``seconds`` in the shortest form :func:`parse_duration` reads back, e.g. ``"1h30m"``."""
    parts: list[str] = []
    rest = seconds
    for unit, factor in UNITS.items():
        amount, rest = divmod(rest, factor)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
