"""Secrets are redacted from the output excerpts a runner signs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.runners.redact import DEFAULT, REDACTED, redactor


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("password=hunter2 ok", "password=", "hunter2"),
        ('{"api_key": "k-123456789"}', '"api_key": "', "k-123456789"),
        ("Authorization: Bearer abcdef0123456789", "Bearer ", "abcdef0123456789"),
        ("git clone https://bob:s3cr3t@git.example.org/x", "https://bob:", "s3cr3t"),
        ("id AKIAABCDEFGHIJKLMNOP end", "id ", "AKIAABCDEFGHIJKLMNOP"),
        ("tok ghp_" + "a" * 36, "tok ", "ghp_" + "a" * 36),
        ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----", "", "MIIE"),
    ],
)
def test_default_patterns_redact_common_secrets(text: str, kept: str, gone: str) -> None:
    out = DEFAULT.redact(text)
    assert gone not in out and REDACTED in out and kept in out


def test_extra_patterns_and_a_bad_one() -> None:
    custom = redactor([r"customer-\d+"])
    assert custom.redact("for customer-4711 today") == f"for {REDACTED} today"
    with pytest.raises(ValueError, match="not a valid regex"):
        redactor(["("])


def test_the_excerpt_is_the_redacted_end_of_the_output() -> None:
    data = b"x" * 10000 + b"\ntoken=abcdefgh123 done\n"
    excerpt = DEFAULT.excerpt(data, 64)
    assert excerpt.endswith(f"token={REDACTED} done\n")
    assert len(excerpt.encode()) <= 64 and "abcdefgh123" not in excerpt


@given(st.binary(max_size=6000))
def test_an_excerpt_is_bounded_text_for_any_bytes(data: bytes) -> None:
    excerpt = DEFAULT.excerpt(data, 4096)
    assert len(excerpt.encode("utf-8")) <= 4096
