"""API tokens: 256 random bits shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "plc_"


def new_token() -> str:
    """A fresh token: ``plc_`` and 32 random bytes in unpadded base64url."""
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """The at-rest form of a token (SHA-256 hex; tokens carry 256 bits, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    """Constant-time check of a token against a stored hash."""
    return hmac.compare_digest(token_hash(token), stored_hash)
