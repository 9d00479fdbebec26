"""Ids: 26 Crockford base32 characters (ULID layout) that sort by creation time."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from placet.domain.ids import new_id

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
MAX_MS = 2**48 - 1
millis = st.integers(min_value=0, max_value=MAX_MS)
randomness = st.binary(min_size=10, max_size=10)


def test_a_fresh_id_is_26_crockford_characters() -> None:
    ident = new_id()
    assert len(ident) == 26
    assert set(ident) <= CROCKFORD


def test_fresh_ids_differ() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000


def test_the_id_encodes_the_current_time() -> None:
    before = int(time.time() * 1000)
    ident = new_id()
    after = int(time.time() * 1000)
    assert new_id(before, bytes(10)) <= ident <= new_id(after, b"\xff" * 10)


def test_known_layout() -> None:
    # 48 bits of time then 80 bits of randomness, most significant first (as in ULID).
    assert new_id(0, bytes(10)) == "0" * 26
    assert new_id(1, bytes(10)) == "0" * 9 + "1" + "0" * 16
    assert new_id(0, b"\x00" * 9 + b"\x1f") == "0" * 25 + "Z"
    assert new_id(MAX_MS, b"\xff" * 10) == "7" + "Z" * 25


@given(millis, randomness)
def test_every_id_is_26_crockford_characters(ms: int, rand: bytes) -> None:
    ident = new_id(ms, rand)
    assert len(ident) == 26
    assert set(ident) <= CROCKFORD
    assert not set(ident) & set("ILOU")


@given(millis, randomness)
def test_the_id_is_a_function_of_time_and_randomness(ms: int, rand: bytes) -> None:
    assert new_id(ms, rand) == new_id(ms, rand)


@given(millis, millis, randomness, randomness)
def test_ids_sort_by_time_whatever_the_randomness(a: int, b: int, ra: bytes, rb: bytes) -> None:
    first, second = new_id(a, ra), new_id(b, rb)
    if a < b:
        assert first < second
    elif a > b:
        assert first > second


@given(millis, randomness, randomness)
def test_ids_of_one_millisecond_share_the_time_prefix(ms: int, ra: bytes, rb: bytes) -> None:
    first, second = new_id(ms, ra), new_id(ms, rb)
    assert first[:10] == second[:10]
    assert (first == second) == (ra == rb)
