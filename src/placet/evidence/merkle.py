"""RFC 9162 Merkle tree hashing and proofs, as pure functions over 32-byte hashes.

Leaves are hashed as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right)
(RFC 9162 §2.1.1). Proofs are lists of 32-byte hashes in RFC 9162 order (§2.1.3, §2.1.4);
on the wire they are lowercase hex. Proof generation takes a ``subtree(start, end)``
function returning MTH(D[start:end]) so that any storage (a list, a cached tree, a
database) can back it; verification needs only the hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from hmac import compare_digest

from placet.evidence.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_PROOF = 128  # a tree of fewer than 2**64 leaves never needs more hashes than this

SubtreeHash = Callable[[int, int], bytes]
"""MTH(D[start:end]) of the leaves ``start`` (inclusive) to ``end`` (exclusive), 0-based."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of one leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n`` >= 2): where RFC 9162 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (RFC 9162 §2.1.1); the empty tree hashes to SHA-256("")."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    # Pairing level by level and promoting an odd last node gives exactly the RFC's
    # largest-power-of-two split, without recursion.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(start, width)`` that RFC 9162 splits D[start:end] into.

    Left to right, one per set bit of ``end - start``, widest first; :func:`fold` of their
    hashes is MTH(D[start:end]). Each is aligned (start a multiple of width) when ``start``
    is a multiple of the first width, as in every range a proof asks for.
    """
    pieces: list[tuple[int, int]] = []
    while end > start:
        width = 1 << ((end - start).bit_length() - 1)
        pieces.append((start, width))
        start += width
    return pieces


def fold(subroots: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its :func:`perfect_subtrees`, left to right."""
    if not subroots:
        return EMPTY_ROOT
    acc = subroots[-1]
    for left in reversed(subroots[:-1]):
        acc = node_hash(left, acc)
    return acc


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """The levels of the perfect tree over ``leaves`` (a power-of-two count), bottom-up.

    First the parents of the leaves, last the one-element list of the root (none for a single
    leaf); node ``i`` of ``levels(...)[h - 1]`` covers leaves ``i * 2**h`` to ``(i+1) * 2**h``.
    """
    if not leaves or len(leaves) & (len(leaves) - 1):
        raise ValueError(f"a perfect tree has a power-of-two number of leaves, not {len(leaves)}")
    out: list[list[bytes]] = []
    level, sha256 = list(leaves), hashlib.sha256
    while len(level) > 1:
        pairs = range(0, len(level), 2)
        level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in pairs]
        out.append(level)
    return out


def subtree_of(leaves: Sequence[bytes]) -> SubtreeHash:
    """A ``subtree`` function over an in-memory list of leaf hashes (uncached)."""

    def subtree(start: int, end: int) -> bytes:
        return root(leaves[start:end])

    return subtree


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """The audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1, bottom-up."""
    _check_sizes(index=index, size=size)
    if index >= size:
        raise ValueError(f"leaf index {index} is not below tree size {size}")
    top_down: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            top_down.append(subtree(start + k, end))
            end = start + k
        else:
            top_down.append(subtree(start, start + k))
            start += k
    top_down.reverse()
    return top_down


def consistency_proof(size1: int, size2: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1; empty when size1 is 0 or equals size2."""
    _check_sizes(size1=size1, size2=size2)
    if size1 > size2:
        raise ValueError(f"size {size1} is larger than size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    top_down: list[bytes] = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            top_down.append(subtree(start + k, end))
            end = start + k
        else:
            top_down.append(subtree(start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        top_down.append(subtree(start, end))
    top_down.reverse()
    return top_down


def _check_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF:
        raise ProofError(f"the proof has {len(proof)} hashes, more than any tree needs")
    for i, node in enumerate(proof):
        if not isinstance(node, bytes) or len(node) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is not {HASH_SIZE} bytes")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1 to 4), or ProofError."""
    _check_sizes(index=index, size=size)
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_proof(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof has more hashes than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof has fewer hashes than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` leaves with that root."""
    computed = root_from_inclusion(index, size, leaf, proof)
    if not compare_digest(computed, expected_root):
        raise ProofError(
            f"the inclusion proof for leaf {index} leads to root {computed.hex()[:16]}…, "
            f"not to the tree root {expected_root.hex()[:16]}…"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (size2, root2) extends the tree (size1, root1) (RFC 9162 §2.1.4.2)."""
    _check_sizes(size1=size1, size2=size2)
    _check_proof(proof)
    if size1 > size2:
        raise ProofError(f"tree size {size2} is smaller than the earlier size {size1}")
    if size1 == size2 or size1 == 0:
        if proof:
            raise ProofError("the consistency proof must be empty for these sizes")
        if size1 == 0 and not compare_digest(root1, EMPTY_ROOT):
            raise ProofError("the root of the empty tree is not SHA-256 of nothing")
        if size1 == size2 and not compare_digest(root1, root2):
            raise ProofError(f"two different roots for the same tree size {size1}")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is a node of the tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof has more hashes than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof has fewer hashes than the trees need")
    if not compare_digest(fr, root1):
        raise ProofError(f"the consistency proof does not lead to the earlier root (size {size1})")
    if not compare_digest(sr, root2):
        raise ProofError(f"the consistency proof does not lead to the later root (size {size2})")
