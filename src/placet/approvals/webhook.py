"""HMAC-SHA256 signatures of outgoing webhooks, and their verification by receivers.

A delivery carries ``Placet-Signature: t=<unix seconds>,v1=<hex>`` where the hex is
HMAC-SHA256(secret, f"{t}.".encode() + body). The timestamp is signed, so a receiver that
rejects stale timestamps (and remembers ``Placet-Event-Id`` within the window) is
replay-resistant. This module needs only the secret: receivers can import it alone.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime

from placet.domain.errors import PlacetError

SIGNATURE_HEADER = "Placet-Signature"
EVENT_ID_HEADER = "Placet-Event-Id"
EVENT_HEADER = "Placet-Event"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds either side of the receiver's clock


class WebhookSignatureError(PlacetError):
    """A webhook's signature header is missing, malformed, stale or does not match."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _seconds(now: datetime | float | None) -> int:
    if now is None:
        return int(time.time())
    if isinstance(now, datetime):
        return int(now.timestamp())
    return int(now)


def compute_signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign_headers(
    secret: str | bytes,
    body: bytes,
    *,
    event: str,
    event_id: str,
    now: datetime | float | None = None,
) -> dict[str, str]:
    """The headers that authenticate ``body``: signature (timestamped), event id and name."""
    timestamp = _seconds(now)
    return {
        SIGNATURE_HEADER: f"t={timestamp},{SCHEME}={compute_signature(secret, timestamp, body)}",
        EVENT_ID_HEADER: event_id,
        EVENT_HEADER: event,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def parse_signature(value: str) -> tuple[int, list[str]]:
    """Split ``t=...,v1=...[,v1=...]`` into the timestamp and the v1 signatures."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError(f"{SIGNATURE_HEADER}: {part.strip()!r} is not name=value")
        if name == "t":
            if not item.isdigit():
                raise WebhookSignatureError(f"{SIGNATURE_HEADER}: t={item!r} is not unix seconds")
            timestamp = int(item)
        elif name == SCHEME:
            signatures.append(item.lower())
    if timestamp is None:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER}: no timestamp (t=)")
    if not signatures:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER}: no {SCHEME}= signature")
    return timestamp, signatures


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Check a received webhook; return its signed timestamp or raise WebhookSignatureError.

    ``body`` must be the raw bytes received (not re-serialised JSON). A timestamp more than
    ``tolerance`` seconds from ``now`` (default: the current time) is refused as stale, so a
    captured request cannot be replayed later. Comparison is constant-time.
    """
    value = _header(headers, SIGNATURE_HEADER)
    if not value:
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header is missing")
    timestamp, signatures = parse_signature(value)
    current = _seconds(now)
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"{SIGNATURE_HEADER}: timestamp {timestamp} is {abs(current - timestamp)}s away from "
            f"now ({current}); more than the {tolerance}s tolerance (stale or replayed)"
        )
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookSignatureError(
            f"{SIGNATURE_HEADER}: the signature does not match the body (wrong secret, or the "
            "body was changed)"
        )
    return timestamp
