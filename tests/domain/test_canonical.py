"""The fast canonical JSON path is byte-for-byte the rfc8785 package's output."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from placet.domain.canonical import canonical_json, digest_of, sha256_hex

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["\u2028", "\x7f", "\x00\x1f", '"\\', "\U0001f600", "\ue000", "é"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def reference(value: Any) -> bytes | type[Exception]:
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as exc:
        return type(exc)


@settings(max_examples=400)
@given(values)
def test_same_bytes_or_same_refusal_as_rfc8785(value: Any) -> None:
    expected = reference(value)
    if isinstance(expected, bytes):
        assert canonical_json(value) == expected
    else:
        try:
            canonical_json(value)
        except Exception as exc:
            assert type(exc) is expected
        else:
            raise AssertionError("the fast path accepted what rfc8785 refuses")


def test_key_order_follows_utf16_code_units() -> None:
    # U+E000 sorts after U+1F600 by code point but before it in UTF-16 code units.
    value = {"\ue000": 1, "\U0001f600": 2}
    assert canonical_json(value) == bytes(rfc8785.dumps(value))


def test_digest_is_sha256_of_canonical_bytes() -> None:
    value = {"b": [1, "x"], "a": None}
    assert canonical_json(value) == b'{"a":null,"b":[1,"x"]}'
    assert digest_of(value) == sha256_hex(b'{"a":null,"b":[1,"x"]}')
