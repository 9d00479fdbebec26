"""RFC 9162 hashing and proofs, against the RFC's recursive definitions and known vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placet.evidence import merkle
from placet.evidence.errors import ProofError

# ---- an independent reference: RFC 9162 §2.1 written out recursively ---------------


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over raw leaf data, straight from the definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def data(n: int, salt: bytes = b"") -> list[bytes]:
    return [salt + i.to_bytes(4, "big") for i in range(n)]


def hashes(items: list[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(item) for item in items]


# ---- known answers (the RFC 6962 test tree used by certificate-transparency) ----------

CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_roots_match_the_rfc_6962_test_vectors() -> None:
    leaves = hashes(CT_LEAVES)
    assert [merkle.root(leaves[: n + 1]).hex() for n in range(8)] == CT_ROOTS
    assert merkle.root([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_proofs_match_the_rfc_6962_test_vectors() -> None:
    subtree = merkle.subtree_of(hashes(CT_LEAVES))
    assert [h.hex() for h in merkle.inclusion_proof(0, 8, subtree)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [h.hex() for h in merkle.consistency_proof(6, 8, subtree)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [h.hex() for h in merkle.consistency_proof(2, 5, subtree)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


def test_leaf_and_node_hashes_use_the_domain_separation_prefixes() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    left, right = b"a" * 32, b"b" * 32
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.leaf_hash(b"x") != hashlib.sha256(b"x").digest()


# ---- every size, against the reference --------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_root_and_inclusion_proofs_match_the_definition(n: int, draw: st.DataObject) -> None:
    items = data(n)
    leaves = hashes(items)
    assert merkle.root(leaves) == ref_mth(items)
    index = draw.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.inclusion_proof(index, n, merkle.subtree_of(leaves))
    assert proof == ref_path(index, items)
    assert merkle.root_from_inclusion(index, n, leaves[index], proof) == ref_mth(items)
    merkle.verify_inclusion(index, n, leaves[index], proof, ref_mth(items))


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs_match_the_definition(n: int, draw: st.DataObject) -> None:
    items = data(n)
    m = draw.draw(st.integers(min_value=1, max_value=n))
    proof = merkle.consistency_proof(m, n, merkle.subtree_of(hashes(items)))
    assert proof == (ref_subproof(m, items, True) if m < n else [])
    merkle.verify_consistency(m, n, ref_mth(items[:m]), ref_mth(items), proof)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.data())
def test_perfect_subtrees_fold_to_the_root_of_any_proof_range(n: int, draw: st.DataObject) -> None:
    # Proof ranges start at a multiple of a power of two at least as wide as the range.
    width = draw.draw(st.sampled_from([1 << k for k in range(10)]))
    start = width * draw.draw(st.integers(min_value=0, max_value=3))
    end = start + draw.draw(st.integers(min_value=0, max_value=width))
    items = data(end)
    pieces = merkle.perfect_subtrees(start, end)
    assert sum(w for _, w in pieces) == end - start
    assert all(s % w == 0 and w & (w - 1) == 0 for s, w in pieces)
    assert [w for _, w in pieces] == sorted({w for _, w in pieces}, reverse=True)
    subroots = [ref_mth(items[s : s + w]) for s, w in pieces]
    assert merkle.fold(subroots) == ref_mth(items[start:end])
    expected, offset = [], 0
    for bit in reversed(range(n.bit_length())):  # one subtree per set bit of n, widest first
        if n >> bit & 1:
            expected.append((offset, 1 << bit))
            offset += 1 << bit
    assert merkle.perfect_subtrees(0, n) == expected


def test_levels_are_the_nodes_of_a_perfect_tree_bottom_up() -> None:
    for k in range(8):
        items = data(1 << k)
        levels = merkle.levels(hashes(items))
        assert [len(level) for level in levels] == [1 << (k - h) for h in range(1, k + 1)]
        for h, level in enumerate(levels, start=1):
            w = 1 << h
            assert level == [ref_mth(items[i * w : (i + 1) * w]) for i in range(len(level))]
        assert (levels[-1] if levels else hashes(items)) == [ref_mth(items)]
    for bad in (0, 3, 6, 12):
        with pytest.raises(ValueError, match="power-of-two"):
            merkle.levels(hashes(data(bad)))


def test_every_small_tree_verifies_every_leaf_and_every_earlier_size() -> None:
    for n in range(1, 40):
        leaves = hashes(data(n))
        subtree = merkle.subtree_of(leaves)
        top = merkle.root(leaves)
        for i in range(n):
            merkle.verify_inclusion(i, n, leaves[i], merkle.inclusion_proof(i, n, subtree), top)
        for m in range(0, n + 1):
            proof = merkle.consistency_proof(m, n, subtree)
            merkle.verify_consistency(m, n, merkle.root(leaves[:m]), top, proof)


# ---- what must fail ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.data())
def test_inclusion_fails_for_another_leaf_or_a_changed_proof(n: int, draw: st.DataObject) -> None:
    leaves = hashes(data(n))
    top = merkle.root(leaves)
    i = draw.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.inclusion_proof(i, n, merkle.subtree_of(leaves))
    other = draw.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda j: j != i))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(other, n, leaves[i], proof, top)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(i, n, leaves[other], proof, top)
    with pytest.raises(ProofError):  # a leaf past the tree's end
        merkle.verify_inclusion(n, n, leaves[i], proof, top)
    if proof:
        flipped = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, n, leaves[i], flipped, top)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, n, leaves[i], proof[:-1], top)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(i, n, leaves[i], [*proof, top], top)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.data())
def test_a_rewritten_history_fails_consistency(n: int, draw: st.DataObject) -> None:
    m = draw.draw(st.integers(min_value=1, max_value=n - 1))
    changed = draw.draw(st.integers(min_value=0, max_value=m - 1))
    honest = data(n)
    rewritten = list(honest)
    rewritten[changed] = b"rewritten"
    old_root = ref_mth(honest[:m])
    forged = hashes(rewritten)
    proof = merkle.consistency_proof(m, n, merkle.subtree_of(forged))
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, old_root, merkle.root(forged), proof)
    # and the honest proof does not vouch for the rewritten tree either
    honest_proof = merkle.consistency_proof(m, n, merkle.subtree_of(hashes(honest)))
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, old_root, merkle.root(forged), honest_proof)


def test_consistency_edge_cases() -> None:
    leaves = hashes(data(5))
    subtree = merkle.subtree_of(leaves)
    top = merkle.root(leaves)
    merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, top, [])
    merkle.verify_consistency(5, 5, top, top, [])
    with pytest.raises(ProofError, match="different roots"):
        merkle.verify_consistency(5, 5, top, merkle.root(leaves[:4]), [])
    with pytest.raises(ProofError, match="must be empty"):
        merkle.verify_consistency(5, 5, top, top, [top])
    with pytest.raises(ProofError, match="smaller"):
        merkle.verify_consistency(5, 4, top, top, merkle.consistency_proof(4, 5, subtree))
    with pytest.raises(ProofError, match="empty"):
        merkle.verify_consistency(3, 5, merkle.root(leaves[:3]), top, [])
    with pytest.raises(ProofError, match="32 bytes"):
        merkle.verify_consistency(3, 5, merkle.root(leaves[:3]), top, [b"short"])
    with pytest.raises(ValueError):
        merkle.consistency_proof(6, 5, subtree)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(5, 5, subtree)
    with pytest.raises(ProofError, match="not below"):
        merkle.verify_inclusion(5, 5, leaves[0], [], top)
