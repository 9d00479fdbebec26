"""RFC 8785 canonical JSON and SHA-256 digests, the one way placet hashes content."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON bytes."""
    return bytes(rfc8785.dumps(value))


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``, lowercase hex."""
    return sha256_hex(canonical_json(value))
