"""The evidence ledger: an append-only RFC 9162 Merkle log over a swappable leaf store.

:class:`MerkleLog` keeps its leaves in a :class:`LeafStore` (the service implements one over
its database tables, inside the current transaction) and hashes them with the pure functions
of :mod:`placet.evidence.merkle`, not a third-party Merkle library: the one we used, pymerkle,
is GPL-3.0-or-later, and placet must stay adoptable under Apache-2.0 without copyleft.
The log object lives for the process and caches the hashes of perfect, aligned subtrees
(``2**k >= cache_threshold`` leaves from a multiple of ``2**k``), which stay valid because
leaves never change once committed; a missing one is hashed from leaf hashes read in bulk,
each leaf once. The cache is shared by threads (under a lock) and holds at most
``max_cached`` hashes, the least recently used dropped first. The store is bound per unit
of work (indexes are 0-based)::

    with log.bound(store):          # one block per database transaction
        index, leaf = log.append(envelope_bytes(envelope))
        root = log.root(index + 1)

Only subtrees over committed leaves are cached, so a transaction that rolls back never
leaves a hash of its discarded leaves in the cache. The block takes as committed the
leaves before its first ``log.append``, or if it reads first, the store's size at that
read; so bind before the transaction's first append, or when leaves were written to the
store some other way in the open transaction, say how many are committed:
``log.bound(store, committed=n)``. A block that ends with an exception also drops
cached hashes past that point.
"""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple, Protocol

from placet.evidence import merkle


class LeafStore(Protocol):
    """Where leaves live. Indexes are 0-based; ``append`` returns the new leaf's index."""

    def size(self) -> int:
        """Number of leaves."""
        ...

    def append(self, data: bytes, leaf_hash: bytes) -> int:
        """Store one leaf (its bytes and RFC 9162 hash); return its 0-based index."""
        ...

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        ...

    def leaf_hashes(self, offset: int, width: int) -> list[bytes]:
        """The hashes of leaves ``offset`` to ``offset + width - 1``, in order."""
        ...


class MemoryLeafStore:
    """A LeafStore in a Python list: for tests, tools and benchmarks."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.hashes: list[bytes] = []

    def size(self) -> int:
        return len(self.hashes)

    def append(self, data: bytes, leaf_hash: bytes) -> int:
        self.data.append(data)
        self.hashes.append(leaf_hash)
        return len(self.hashes) - 1

    def leaf_hash(self, index: int) -> bytes:
        return self.hashes[index]

    def leaf_hashes(self, offset: int, width: int) -> list[bytes]:
        return self.hashes[offset : offset + width]

    def truncate(self, size: int) -> None:
        """Drop the leaves from ``size`` on, as a rolled-back transaction would."""
        del self.data[size:]
        del self.hashes[size:]


class NoStoreBound(RuntimeError):
    """A log operation ran outside ``MerkleLog.bound`` and the log has no default store."""


class CacheInfo(NamedTuple):
    """How the subtree cache is doing: cached hashes, lookups answered and missed."""

    entries: int
    hits: int
    misses: int


@dataclass(slots=True)
class _Binding:
    store: LeafStore
    transactional: bool
    committed: int | None = None  # leaves known to be durable, learned lazily


# The store each log is bound to in the current thread or task, by id(log).
_BINDINGS: contextvars.ContextVar[Mapping[int, _Binding]] = contextvars.ContextVar(
    "placet_merkle_log_bindings", default=MappingProxyType({})
)


class MerkleLog:
    """An RFC 9162 Merkle log (SHA-256, 0x00/0x01 prefixes) over a bound :class:`LeafStore`.

    ``store`` is an optional default, used outside any ``bound`` block and treated as
    non-transactional (everything in it counts as committed), e.g. a MemoryLeafStore.
    ``cache_threshold`` is the smallest perfect subtree whose hash is cached.
    """

    max_cached = 1 << 18  # ~70 MB: every cacheable subtree of 4M leaves at threshold 32
    max_read = 1 << 14  # hash a missing subtree at most this wide from one read of its leaves

    def __init__(self, store: LeafStore | None = None, *, cache_threshold: int = 32) -> None:
        if type(cache_threshold) is not int or cache_threshold < 1:
            raise ValueError(f"cache_threshold must be a positive int, not {cache_threshold!r}")
        self._default = _Binding(store, transactional=False) if store is not None else None
        self._floor = 1 << (cache_threshold - 1).bit_length()  # narrowest cached width
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = 0

    @contextmanager
    def bound(self, store: LeafStore, *, committed: int | None = None) -> Iterator[MerkleLog]:
        """Run the block against ``store`` (per thread / task); use one block per transaction.

        ``committed``: how many leaves are durable (see the module doc); default: learned.
        """
        binding = _Binding(store, transactional=True, committed=committed)
        token = _BINDINGS.set({**_BINDINGS.get(), id(self): binding})
        try:
            yield self
        except BaseException:
            if binding.committed is not None:
                self.forget_from(binding.committed)
            raise
        finally:
            _BINDINGS.reset(token)

    def _current(self) -> _Binding:
        binding = _BINDINGS.get().get(id(self)) or self._default
        if binding is None:
            raise NoStoreBound("no LeafStore bound: use `with log.bound(store):`")
        return binding

    def forget_from(self, size: int) -> None:
        """Drop cached subtree hashes covering any leaf at index ``size`` or later."""
        with self._lock:
            for key in [k for k in self._cache if k[0] + k[1] > size]:
                del self._cache[key]

    def cache_info(self) -> CacheInfo:
        """Counters of the subtree cache (for tests and benchmarks)."""
        with self._lock:
            return CacheInfo(len(self._cache), self._hits, self._misses)

    def cached_subtrees(self) -> list[tuple[int, int]]:
        """The ``(start, width)`` of every cached subtree hash, in start order."""
        with self._lock:
            return sorted(self._cache)

    # ---- public API (0-based) -----------------------------------------------------

    def append(self, data: bytes) -> tuple[int, bytes]:
        """Append one leaf (the envelope's canonical bytes); return (index, leaf hash)."""
        if not isinstance(data, bytes):
            raise TypeError("a log leaf is bytes (envelope_bytes of the envelope)")
        binding, leaf = self._current(), merkle.leaf_hash(data)
        index = binding.store.append(data, leaf)
        if binding.transactional and binding.committed is None:
            binding.committed = index
        return index, leaf

    def size(self) -> int:
        """Number of leaves in the bound store."""
        return self._current().store.size()

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all)."""
        current, subtree = self._reader()
        size = current if size is None else size
        if not 0 <= size <= current:
            raise ValueError(f"no root for tree size {size}: the log has {current} leaves")
        return subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        current, subtree = self._reader()
        if not 0 <= index < size <= current:
            raise ValueError(f"no inclusion proof for leaf {index} in a tree of size {size}")
        return merkle.inclusion_proof(index, size, subtree)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 proof that the tree of ``size2`` leaves extends the one of ``size1``."""
        current, subtree = self._reader()
        if not 0 <= size1 <= size2 <= current:
            raise ValueError(f"no consistency proof from size {size1} to size {size2}")
        return merkle.consistency_proof(size1, size2, subtree)

    # ---- subtree hashes -------------------------------------------------------------

    def _reader(self) -> tuple[int, merkle.SubtreeHash]:
        """The bound store's size and MTH(D[start:end]) over it, cached below its committed size."""
        binding = self._current()
        size = binding.store.size()
        if binding.transactional and binding.committed is None:
            binding.committed = size  # a block that reads first: what it sees is committed
        limit = binding.committed if binding.transactional else None

        def subtree(start: int, end: int) -> bytes:
            pieces = merkle.perfect_subtrees(start, end)
            return merkle.fold([self._perfect(binding.store, s, w, limit) for s, w in pieces])

        return size, subtree

    def _perfect(self, store: LeafStore, start: int, width: int, limit: int | None) -> bytes:
        """MTH of the perfect subtree of ``width`` leaves from ``start``, cached when aligned."""
        if width < self._floor or start % width:
            return merkle.root(_read(store, start, width))
        key, half = (start, width), width >> 1
        with self._lock:
            if (hit := self._cache.get(key)) is not None:
                self._hits += 1
                self._cache.move_to_end(key)
                return hit
            self._misses += 1
            split = width > self._floor and (
                (start, half) in self._cache or (start + half, half) in self._cache
            )
        if split or width > self.max_read:  # reuse cached halves; keep one read bounded
            left = self._perfect(store, start, half, limit)
            value = merkle.node_hash(left, self._perfect(store, start + half, half, limit))
            self._remember([(key, value)], limit)
            return value
        leaves = _read(store, start, width)
        nodes = [(key, leaves[0])] if width == 1 else []  # a leaf is cached at threshold 1
        for height, level in enumerate(merkle.levels(leaves), start=1):
            if (w := 1 << height) >= self._floor:
                nodes += [((start + i * w, w), node) for i, node in enumerate(level)]
        self._remember(nodes, limit)
        return nodes[-1][1]

    def _remember(self, nodes: list[tuple[tuple[int, int], bytes]], limit: int | None) -> None:
        """Cache the nodes over committed leaves; drop the least recently used past the bound."""
        with self._lock:
            for (start, width), value in nodes:
                if limit is None or start + width <= limit:
                    self._cache[start, width] = value
                    self._cache.move_to_end((start, width))
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)


def _read(store: LeafStore, start: int, width: int) -> list[bytes]:
    """The hashes of ``width`` leaves from ``start``, refusing a store that has gaps."""
    hashes = store.leaf_hashes(start, width)
    if len(hashes) != width:
        raise LookupError(f"the leaf store has {len(hashes)} of the {width} leaves from {start}")
    return hashes
