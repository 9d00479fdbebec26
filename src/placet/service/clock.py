"""Wall-clock time in UTC and its RFC 3339 form."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 with milliseconds and a Z, e.g. ``2026-11-25T22:40:01.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse what :func:`rfc3339` writes (and other RFC 3339 forms)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
