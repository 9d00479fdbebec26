"""RFC 3339 UTC timestamps as they appear on the wire ("2026-11-25T22:40:01.123Z")."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with milliseconds and a ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp must be timezone-aware")
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_time(text: object, field: str) -> datetime:
    """Parse an RFC 3339 timestamp that carries a UTC offset; raise ValueError naming ``field``."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"{field}: must be an RFC 3339 timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"{field}: {text!r} has no UTC offset")
    return moment.astimezone(UTC)
