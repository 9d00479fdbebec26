"""Webhook signatures: a receiver accepts what placet signed, and nothing else."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.approvals.webhook import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookSignatureError,
    sign_headers,
    verify_signature,
)

SECRET = "whsec_" + "ab" * 32
BODY = b'{"event":"approval.requested","id":"01J"}'
T0 = 1_800_000_000


def signed(body: bytes = BODY, now: float = T0, secret: str = SECRET) -> dict[str, str]:
    return sign_headers(secret, body, event="approval.requested", event_id="01J", now=now)


def test_header_format_is_the_documented_hmac() -> None:
    headers = signed()
    expected = hmac.new(SECRET.encode(), f"{T0}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"t={T0},v1={expected}"
    assert headers[EVENT_ID_HEADER] == "01J" and headers[EVENT_HEADER] == "approval.requested"


def test_a_fresh_signature_verifies_with_any_header_case() -> None:
    lower = {k.lower(): v for k, v in signed().items()}
    assert verify_signature(SECRET, lower, BODY, now=T0 + 10) == T0
    at = datetime.fromtimestamp(T0 - 299, UTC)
    assert verify_signature(SECRET.encode(), signed(), BODY, now=at) == T0


def test_a_replay_after_the_tolerance_is_refused() -> None:
    headers = signed()
    with pytest.raises(WebhookSignatureError, match="stale or replayed"):
        verify_signature(SECRET, headers, BODY, now=T0 + 301)
    with pytest.raises(WebhookSignatureError, match="tolerance"):  # from the future too
        verify_signature(SECRET, headers, BODY, now=T0 - 400)
    assert verify_signature(SECRET, headers, BODY, now=T0 + 3600, tolerance=7200) == T0


def test_tampered_body_wrong_secret_and_moved_timestamp_are_refused() -> None:
    headers = signed()
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(SECRET, headers, BODY.replace(b"requested", b"authorized"), now=T0)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature("whsec_other", headers, BODY, now=T0)
    # Re-stamping an old signature with a fresh timestamp breaks it: the time is signed.
    v1 = headers[SIGNATURE_HEADER].split(",")[1]
    moved = {**headers, SIGNATURE_HEADER: f"t={T0 + 1000},{v1}"}
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(SECRET, moved, BODY, now=T0 + 1000)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "no timestamp"),
        (f"t={T0}", "no v1= signature"),
        ("t=yesterday,v1=abc", "not unix seconds"),
        ("garbage", "not name=value"),
    ],
)
def test_malformed_headers_say_what_is_wrong(value: str | None, problem: str) -> None:
    headers = {} if value is None else {SIGNATURE_HEADER: value}
    with pytest.raises(WebhookSignatureError, match=problem):
        verify_signature(SECRET, headers, BODY, now=T0)


def test_any_of_several_signatures_may_match() -> None:
    good = signed()[SIGNATURE_HEADER]
    timestamp, v1 = good.split(",")
    rotated = {SIGNATURE_HEADER: f"{timestamp},v1={'0' * 64},{v1}"}
    assert verify_signature(SECRET, rotated, BODY, now=T0) == T0


@given(st.binary(max_size=512), st.binary(min_size=1, max_size=64), st.integers(0, 2**40))
def test_every_signed_body_verifies_and_any_flipped_byte_does_not(
    body: bytes, secret: bytes, now: int
) -> None:
    headers = sign_headers(secret, body, event="test", event_id="x", now=now)
    assert verify_signature(secret, headers, body, now=now) == now
    tampered = body + b"!" if not body else bytes([body[0] ^ 1]) + body[1:]
    with pytest.raises(WebhookSignatureError):
        verify_signature(secret, headers, tampered, now=now)
