"""MerkleLog: RFC 9162 roots and proofs over a bound LeafStore, with a safe subtree cache."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placet.evidence import merkle
from placet.evidence.log import LeafStore, MemoryLeafStore, MerkleLog, NoStoreBound


class SqliteLeafStore:
    """A LeafStore over a real SQLite connection, used inside explicit transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def size(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM leaves").fetchone()[0])

    def append(self, data: bytes, leaf_hash: bytes) -> int:
        index = self.size()
        self.conn.execute("INSERT INTO leaves VALUES (?, ?, ?)", (index, data, leaf_hash))
        return index

    def leaf_hash(self, index: int) -> bytes:
        row = self.conn.execute("SELECT hash FROM leaves WHERE idx = ?", (index,)).fetchone()
        return bytes(row[0])

    def leaf_hashes(self, offset: int, width: int) -> list[bytes]:
        rows = self.conn.execute(
            "SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
            (offset, offset + width),
        ).fetchall()
        return [bytes(r[0]) for r in rows]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> SqliteLeafStore:
    conn = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    conn.execute("CREATE TABLE leaves (idx INTEGER PRIMARY KEY, data BLOB, hash BLOB)")
    return SqliteLeafStore(conn)


def filled(n: int, threshold: int = 2) -> tuple[MerkleLog, MemoryLeafStore]:
    store = MemoryLeafStore()
    log = MerkleLog(store, cache_threshold=threshold)
    for i in range(n):
        log.append(b"leaf %d" % i)
    return log, store


def test_append_returns_the_0_based_index_and_the_rfc_leaf_hash() -> None:
    store = MemoryLeafStore()
    log = MerkleLog(store)
    assert log.size() == 0 and log.root() == merkle.EMPTY_ROOT
    assert log.append(b"first") == (0, merkle.leaf_hash(b"first"))
    assert log.append(b"second") == (1, merkle.leaf_hash(b"second"))
    assert store.data == [b"first", b"second"] and log.size() == 2
    with pytest.raises(TypeError):
        log.append("text")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=140), st.integers(min_value=1, max_value=8), st.data())
def test_roots_and_proofs_are_rfc_9162(n: int, threshold_bits: int, draw: st.DataObject) -> None:
    log, store = filled(n, threshold=1 << (threshold_bits - 1))
    subtree = merkle.subtree_of(store.hashes)
    for _ in range(3):  # repeat so that cached subtrees are used, not only computed
        size = draw.draw(st.integers(min_value=1, max_value=n))
        index = draw.draw(st.integers(min_value=0, max_value=size - 1))
        earlier = draw.draw(st.integers(min_value=0, max_value=size))
        assert log.root(size) == merkle.root(store.hashes[:size])
        proof = log.inclusion_proof(index, size)
        assert proof == merkle.inclusion_proof(index, size, subtree)
        merkle.verify_inclusion(index, size, store.hashes[index], proof, log.root(size))
        consistency = log.consistency_proof(earlier, size)
        assert consistency == merkle.consistency_proof(earlier, size, subtree)
        merkle.verify_consistency(earlier, size, log.root(earlier), log.root(size), consistency)


def test_out_of_range_requests_are_refused() -> None:
    log, _ = filled(5)
    for index, size in [(5, 5), (0, 6), (-1, 3), (0, 0)]:
        with pytest.raises(ValueError):
            log.inclusion_proof(index, size)
    for size1, size2 in [(3, 2), (0, 6), (-1, 2)]:
        with pytest.raises(ValueError):
            log.consistency_proof(size1, size2)


def test_without_a_store_the_log_says_so() -> None:
    log = MerkleLog()
    with pytest.raises(NoStoreBound, match=r"log\.bound"):
        log.size()
    store = MemoryLeafStore()
    with log.bound(store):
        log.append(b"x")
        assert log.root() == merkle.leaf_hash(b"x")
    with pytest.raises(NoStoreBound):
        log.root()


def test_two_logs_bound_at_once_keep_their_own_stores() -> None:
    first, second = MerkleLog(), MerkleLog()
    a, b = MemoryLeafStore(), MemoryLeafStore()
    with first.bound(a), second.bound(b):
        first.append(b"a")
        second.append(b"b1")
        second.append(b"b2")
        with first.bound(b):  # an inner block rebinds only its own log
            assert first.size() == 2
        assert (first.size(), second.size()) == (1, 2)
    assert a.data == [b"a"] and b.data == [b"b1", b"b2"]


def test_each_thread_sees_the_store_it_bound() -> None:
    log = MerkleLog(cache_threshold=2)
    stores = [MemoryLeafStore(), MemoryLeafStore()]
    for count, store in zip((3, 5), stores, strict=True):
        for i in range(count):
            store.append(b"%d" % i, merkle.leaf_hash(b"%d" % i))
    both_bound = threading.Barrier(2)
    seen: dict[int, tuple[int, bytes]] = {}

    def work(slot: int, store: LeafStore) -> None:
        with log.bound(store):
            both_bound.wait(timeout=10)
            seen[slot] = (log.size(), log.root())

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen[0] == (3, merkle.root(stores[0].hashes))
    assert seen[1] == (5, merkle.root(stores[1].hashes))


def test_a_rolled_back_transaction_leaves_no_stale_subtree_in_the_cache(
    sqlite_store: SqliteLeafStore,
) -> None:
    log = MerkleLog(cache_threshold=2)
    conn = sqlite_store.conn
    conn.execute("BEGIN")
    with log.bound(sqlite_store):
        for i in range(8):
            log.append(b"committed %d" % i)
    conn.execute("COMMIT")

    conn.execute("BEGIN")
    with log.bound(sqlite_store):
        for i in range(8):
            log.append(b"discarded %d" % i)
        discarded_root = log.root(16)
        discarded_proof = log.inclusion_proof(12, 16)
        log.consistency_proof(5, 16)
        assert log.root(16) == merkle.root(sqlite_store.leaf_hashes(0, 16))
    conn.execute("ROLLBACK")
    cached = log.cached_subtrees()
    assert (0, 8) in cached and all(offset + width <= 8 for offset, width in cached)

    conn.execute("BEGIN")
    with log.bound(sqlite_store):
        for i in range(8):
            log.append(b"kept %d" % i)
    conn.execute("COMMIT")

    with log.bound(sqlite_store):
        hashes = sqlite_store.leaf_hashes(0, 16)
        assert log.root(16) == merkle.root(hashes) != discarded_root
        proof = log.inclusion_proof(12, 16)
        assert proof == merkle.inclusion_proof(12, 16, merkle.subtree_of(hashes)) != discarded_proof
        before = log.cache_info().hits
        log.root(16)
        assert log.cache_info().hits > before  # committed subtrees are cached


def test_a_block_that_fails_drops_what_it_cached(sqlite_store: SqliteLeafStore) -> None:
    log = MerkleLog(cache_threshold=2)
    conn = sqlite_store.conn
    with log.bound(sqlite_store):  # autocommit: each append is durable at once
        for i in range(4):
            log.append(b"base %d" % i)
    # A block that appends and reads without committing, then fails: its leaves go away.
    conn.execute("BEGIN")
    with pytest.raises(RuntimeError), log.bound(sqlite_store):
        for i in range(12):
            log.append(b"doomed %d" % i)
        log.root(16)
        raise RuntimeError("the statement could not be recorded")
    conn.execute("ROLLBACK")
    assert all(offset + width <= 4 for offset, width in log.cached_subtrees())
    conn.execute("BEGIN")
    with log.bound(sqlite_store):
        for i in range(12):
            log.append(b"real %d" % i)
    conn.execute("COMMIT")
    with log.bound(sqlite_store):
        assert log.root(16) == merkle.root(sqlite_store.leaf_hashes(0, 16))


def test_leaves_written_around_the_log_are_not_cached_when_the_caller_says_so(
    sqlite_store: SqliteLeafStore,
) -> None:
    log = MerkleLog(cache_threshold=2)
    with log.bound(sqlite_store):
        for i in range(8):
            log.append(b"committed %d" % i)
    conn = sqlite_store.conn
    conn.execute("BEGIN")
    for i in range(8):  # the service may insert leaves itself, then prove in the same transaction
        data = b"uncommitted %d" % i
        sqlite_store.append(data, merkle.leaf_hash(data))
    with log.bound(sqlite_store, committed=8):
        log.root(16)
    conn.execute("ROLLBACK")
    cached = log.cached_subtrees()
    assert (0, 8) in cached and all(offset + width <= 8 for offset, width in cached)


def test_a_failing_block_forgets_cached_hashes_past_its_committed_size() -> None:
    log, store = MerkleLog(cache_threshold=2), MemoryLeafStore()
    with log.bound(store):
        for i in range(16):
            log.append(b"%d" % i)
    with log.bound(store):  # a later reader caches the whole committed tree
        log.root(16)
    assert (0, 16) in log.cached_subtrees()
    with pytest.raises(RuntimeError), log.bound(store, committed=4):
        raise RuntimeError("the caller no longer trusts the leaves past 4")
    cached = log.cached_subtrees()
    assert (0, 4) in cached and all(offset + width <= 4 for offset, width in cached)


def test_forget_from_drops_only_subtrees_past_the_size() -> None:
    log, _ = filled(32)
    log.root(32)
    assert any(offset + width > 16 for offset, width in log.cached_subtrees())
    log.forget_from(16)
    cached = log.cached_subtrees()
    assert (0, 16) in cached and all(offset + width <= 16 for offset, width in cached)


# ---- against an independent computation ---------------------------------------------


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes, written out from RFC 9162 §2.1.1 (recursive, uncached)."""
    if len(leaves) <= 1:
        return leaves[0] if leaves else hashlib.sha256(b"").digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, recursive."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, recursive."""
    if m == len(leaves):
        return [] if whole else [ref_mth(leaves)]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=400),
    st.sampled_from([1, 2, 3, 4, 5, 8, 32, 64]),
    st.sampled_from([1, 4, 16, 1 << 14]),
    st.integers(min_value=1, max_value=1 << 10),
    st.data(),
)
def test_a_growing_log_matches_the_rfc_definition_at_every_step(
    n: int, threshold: int, max_read: int, max_cached: int, draw: st.DataObject
) -> None:
    store = MemoryLeafStore()
    log = MerkleLog(store, cache_threshold=threshold)
    log.max_read, log.max_cached = max_read, max_cached
    # Grow in batches, asking for roots and proofs in between, so that later answers mix
    # subtrees cached at earlier sizes with new ones (and with evictions when the bound is small).
    while log.size() < n:
        for _ in range(draw.draw(st.integers(min_value=1, max_value=max(1, n // 4)))):
            log.append(b"leaf %d" % log.size())
        size = log.size()
        if size > n:
            break
        assert log.root() == ref_mth(store.hashes) == merkle.root(store.hashes)
        index = draw.draw(st.integers(min_value=0, max_value=size - 1))
        earlier = draw.draw(st.integers(min_value=1, max_value=size))
        assert log.inclusion_proof(index, size) == ref_path(index, store.hashes)
        expected = ref_subproof(earlier, store.hashes, True) if earlier < size else []
        assert log.consistency_proof(earlier, size) == expected
        assert log.root(earlier) == ref_mth(store.hashes[:earlier])
        assert log.cache_info().entries <= max_cached
    assert log.root(0) == merkle.EMPTY_ROOT


def test_every_proof_of_small_trees_matches_the_definition_with_every_split() -> None:
    log, store = filled(70, threshold=4)
    log.max_read = 8  # wider missing subtrees are built from their halves
    for size in range(1, 71):
        leaves = store.hashes[:size]
        assert log.root(size) == ref_mth(leaves)
        for index in range(size):
            assert log.inclusion_proof(index, size) == ref_path(index, leaves)
        for earlier in range(1, size):
            assert log.consistency_proof(earlier, size) == ref_subproof(earlier, leaves, True)


# ---- reads, bounds and sharing ------------------------------------------------------


class CountingStore(MemoryLeafStore):
    """A MemoryLeafStore that counts how often each leaf hash is read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[int] = Counter()

    def leaf_hashes(self, offset: int, width: int) -> list[bytes]:
        self.reads.update(range(offset, min(offset + width, self.size())))
        return super().leaf_hashes(offset, width)


def test_a_cold_root_reads_each_leaf_once_and_a_warm_one_only_the_uncached_tail() -> None:
    store = CountingStore()
    log = MerkleLog(store, cache_threshold=32)
    log.max_read = 1024
    for i in range(5000):  # 5000 = 4096 + 512 + 256 + 128 + 8: a tail of 8 below the threshold
        log.append(b"%d" % i)
    assert log.root() == merkle.root(store.hashes)
    assert set(store.reads.values()) == {1} and len(store.reads) == 5000
    store.reads.clear()
    hits = log.cache_info().hits
    assert log.root() == merkle.root(store.hashes)
    assert sorted(store.reads) == list(range(4992, 5000))
    assert log.cache_info().hits == hits + 4
    store.reads.clear()
    for i in range(5000, 5120):  # growing to 5120 = 4096 + 1024 reuses the cached 512, 256, 128
        log.append(b"%d" % i)
    assert log.root() == merkle.root(store.hashes)
    assert sorted(store.reads) == list(range(4992, 5120))


def test_the_cache_keeps_at_most_max_cached_hashes_dropping_the_least_recently_used() -> None:
    log, store = filled(1024, threshold=2)
    log.max_cached = 10
    assert log.root() == merkle.root(store.hashes)
    assert log.cache_info().entries == 10 and (0, 1024) in log.cached_subtrees()
    log.inclusion_proof(0, 1024)  # needs (512, 512), ..., (4, 4), (2, 2): the last used is kept
    assert (0, 1024) not in log.cached_subtrees() and (2, 2) in log.cached_subtrees()
    assert log.root() == merkle.root(store.hashes) and log.cache_info().entries == 10


def test_a_cache_hit_makes_a_subtree_the_most_recently_used() -> None:
    log, _ = filled(6, threshold=2)
    log.max_cached = 2
    log.root(4)  # caches (0, 2), (2, 2), (0, 4); the bound keeps the last two
    assert log.cached_subtrees() == [(0, 4), (2, 2)]
    log.consistency_proof(2, 4)  # uses only (2, 2)
    log.consistency_proof(4, 6)  # caches (4, 2), dropping (0, 4), now the least recently used
    assert log.cached_subtrees() == [(2, 2), (4, 2)]


def test_a_threshold_that_is_not_a_power_of_two_caches_the_next_one_up() -> None:
    log, store = filled(40, threshold=5)
    assert log.root() == merkle.root(store.hashes)
    assert {width for _, width in log.cached_subtrees()} == {8, 16, 32}
    for bad in (0, -4):
        with pytest.raises(ValueError, match="cache_threshold"):
            MerkleLog(cache_threshold=bad)


def test_a_store_with_missing_leaves_is_reported(sqlite_store: SqliteLeafStore) -> None:
    log = MerkleLog(cache_threshold=2)
    with log.bound(sqlite_store):
        for i in range(6):
            log.append(b"%d" % i)
    sqlite_store.conn.execute("UPDATE leaves SET idx = 9 WHERE idx = 2")  # a gap at leaf 2
    with log.bound(sqlite_store), pytest.raises(LookupError, match="has 3 of the 4 leaves from 0"):
        log.root(4)


def test_readers_on_many_threads_agree_with_the_definition_while_one_thread_appends() -> None:
    store = MemoryLeafStore()
    log = MerkleLog(store, cache_threshold=2)
    log.max_read, log.max_cached = 8, 64  # many splits and evictions under contention
    for i in range(16):
        log.append(b"seed %d" % i)
    start, done = threading.Barrier(5), threading.Event()
    failures: list[BaseException] = []
    rounds = [0] * 4

    def writer() -> None:
        start.wait(timeout=10)
        for i in range(3000):
            log.append(b"more %d" % i)
        done.set()

    def reader(slot: int) -> None:
        start.wait(timeout=10)
        try:
            while not done.is_set() or rounds[slot] < 20:
                size = log.size()
                leaves = store.hashes[:size]  # leaves never change, so this prefix is stable
                root = log.root(size)
                index, earlier = (rounds[slot] * 7919) % size, 1 + (rounds[slot] * 104729) % size
                assert root == merkle.root(leaves)
                proof = log.inclusion_proof(index, size)
                merkle.verify_inclusion(index, size, leaves[index], proof, root)
                consistency = log.consistency_proof(earlier, size)
                merkle.verify_consistency(
                    earlier, size, merkle.root(leaves[:earlier]), root, consistency
                )
                rounds[slot] += 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            done.set()

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(slot,)) for slot in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert min(rounds) >= 20 and log.size() == 3016
    assert log.root() == merkle.root(store.hashes)
