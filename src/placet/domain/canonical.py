"""RFC 8785 canonical JSON and SHA-256 digests, the one way placet hashes content.

The ``rfc8785`` package is the reference; it is pure Python and slow on the hot path
(every statement and envelope is canonicalised). For values without floats, without
integers beyond 2**53 and without characters outside the BMP, RFC 8785 output is
exactly Python's sorted, compact ``json.dumps`` with ``ensure_ascii=False``; those take
the fast path and everything else goes to ``rfc8785``. A property test holds the two
paths equal.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import rfc8785

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)
_OUTSIDE_BMP = re.compile("[\U00010000-\U0010ffff]")
_MAX_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only types whose JSON text RFC 8785 and ``json`` agree on."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                return False
        elif kind is dict:
            if any(type(key) is not str for key in item):
                return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON bytes."""
    if _plain(value):
        text = _ENCODER.encode(value)
        if not _OUTSIDE_BMP.search(text):  # UTF-16 key order equals code point order
            try:
                return text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: let rfc8785 refuse them
                pass
    return bytes(rfc8785.dumps(value))


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``, lowercase hex."""
    return sha256_hex(canonical_json(value))
