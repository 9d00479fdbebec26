"""Blast radius, dependencies and reachability over one graph version, indexed once.

Semantics. A change to X *affects* Y when Y depends on X, which the edge kinds say so:

- ``Y depends_on X``, ``Y calls X``, ``Y consumes_api X``, ``Y reads X``, ``Y writes X``:
  Y is affected by X (the edge is followed backwards);
- ``X writes Y`` (the data written), ``X provides_api Y``, ``X deploys Y``: Y is affected
  by X (the edge is followed forwards). ``writes`` therefore counts both ways;
- ``owned_by`` and ``part_of`` never propagate.

:meth:`GraphIndex.blast` is every node a change to the targets affects, transitively,
with its hop distance and one shortest path from a target; the targets themselves are in
the radius at distance 0, so the roll-up (tags, owners, ``regulated-data:*`` data classes,
``revenue-path``) covers what the change touches directly. Unknown targets are listed, not
raised. :meth:`GraphIndex.dependencies` is the same walk the other way: what a node
depends on. :meth:`GraphIndex.reach` asks whether any ``internet-facing`` node reaches a
node by the way requests flow (``calls``, ``depends_on``, ``consumes_api``, ``reads`` and
``writes`` from source to target, ``provides_api`` from the api to its provider), and by
which shortest path. Cycles are legal: every node is visited once.

Determinism: node indexes follow sorted ids, and the path to a node at distance d goes
through its first neighbour (in id order) at distance d - 1, whichever engine ran.

Speed: walks run on :mod:`placet.graph.walk` (rustworkx, or numpy for radii estimated
large; plain Python then numpy for walks filtered by edge kind or stopped at entry points).
Paths are built only when asked for (:attr:`Blast.nodes`, :meth:`Blast.first`), since a
whole-graph radius has one per node: list a few with ``as_dict(limit=...)``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from placet.domain.errors import InputError
from placet.graph.model import (
    INTERNET_FACING,
    REGULATED_PREFIX,
    REVENUE_PATH,
    EdgeKind,
    NodeKind,
)
from placet.graph.version import Graph
from placet.graph.walk import KIND_CODES, Csr, Ints, Layer, Rollup, Way, as_list

AFFECTED_IS_SOURCE = frozenset(
    {EdgeKind.DEPENDS_ON, EdgeKind.CALLS, EdgeKind.CONSUMES_API, EdgeKind.READS, EdgeKind.WRITES}
)
AFFECTED_IS_TARGET = frozenset({EdgeKind.WRITES, EdgeKind.PROVIDES_API, EdgeKind.DEPLOYS})
FLOWS_FORWARD = AFFECTED_IS_SOURCE
FLOWS_BACKWARD = frozenset({EdgeKind.PROVIDES_API})
_AFFECTS = (AFFECTED_IS_TARGET, AFFECTED_IS_SOURCE)  # (kinds walked as given, reversed)
_FLOWS = (FLOWS_FORWARD, FLOWS_BACKWARD)


@dataclass(frozen=True, slots=True)
class BlastNode:
    """A node in a radius: its hop distance and one shortest path from a start node."""

    id: str
    kind: NodeKind
    distance: int
    path: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "distance": self.distance,
            "path": list(self.path),
        }


@dataclass(frozen=True)
class Blast:
    """A radius (blast or dependencies) with its roll-up; :attr:`nodes` built on demand."""

    version: str
    targets: tuple[str, ...]
    unknown: tuple[str, ...]
    count: int
    tags: tuple[str, ...]
    owners: tuple[str, ...]
    data_classes: tuple[str, ...]
    revenue_path: bool
    _walk: _Walk = field(repr=False, compare=False)

    @cached_property
    def nodes(self) -> tuple[BlastNode, ...]:
        """Every node in the radius by (distance, id), targets first, each with a path."""
        return self._walk.nodes(None)

    def first(self, limit: int) -> tuple[BlastNode, ...]:
        """The first ``limit`` nodes of :attr:`nodes`, building only their paths."""
        return self._walk.nodes(limit)

    @property
    def distances(self) -> dict[str, int]:
        """Hop distance of every node in the radius."""
        return {self._walk.index.ids[i]: d for i, d in self._walk.distance.items()}

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-able; ``limit`` lists only the nearest nodes (``count`` is always all)."""
        listed = self.nodes if limit is None else self.first(limit)
        return {
            "version": self.version,
            "targets": list(self.targets),
            "unknown": list(self.unknown),
            "count": self.count,
            "nodes": [node.as_dict() for node in listed],
            "tags": list(self.tags),
            "owners": list(self.owners),
            "data_classes": list(self.data_classes),
            "revenue_path": self.revenue_path,
        }


@dataclass(frozen=True, slots=True)
class Reach:
    """Whether an ``internet-facing`` node reaches ``node``, and the shortest way it does."""

    node: str
    known: bool
    reachable: bool
    entry_point: str | None
    path: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "reachable": self.reachable,
            "entry_point": self.entry_point,
            "path": list(self.path),
        }


class GraphIndex:
    """One graph version prepared for queries: build once, query from any thread."""

    def __init__(self, graph: Graph) -> None:
        ids = sorted(graph.nodes)
        pos = {node_id: i for i, node_id in enumerate(ids)}
        nodes = [graph.nodes[i] for i in ids]
        self._build(
            ids,
            [n.kind for n in nodes],
            [n.tags for n in nodes],
            [n.owners for n in nodes],
            [pos[e.source] for e in graph.edges],
            [pos[e.target] for e in graph.edges],
            [e.kind for e in graph.edges],
            graph.digest,
        )

    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[str],
        kinds: Sequence[NodeKind],
        tags: Sequence[Sequence[str]],
        owners: Sequence[Sequence[str]],
        sources: Sequence[int] | Ints,
        targets: Sequence[int] | Ints,
        edge_kinds: Sequence[EdgeKind],
        version: str = "",
    ) -> GraphIndex:
        """An index straight from node columns and edges as node positions (no Graph)."""
        index = cls.__new__(cls)
        index._build(ids, kinds, tags, owners, sources, targets, edge_kinds, version)
        return index

    def _build(
        self,
        ids: Sequence[str],
        kinds: Sequence[NodeKind],
        tags: Sequence[Sequence[str]],
        owners: Sequence[Sequence[str]],
        sources: Sequence[int] | Ints,
        targets: Sequence[int] | Ints,
        edge_kinds: Sequence[EdgeKind],
        version: str,
    ) -> None:
        n = len(ids)
        order = sorted(range(n), key=ids.__getitem__)
        if len(set(ids)) != n:
            raise ValueError("node ids must be unique")
        rank = np.empty(n, dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(n, dtype=np.int64)
        self.version = version
        self.ids: tuple[str, ...] = tuple(ids[i] for i in order)
        self.kinds: tuple[NodeKind, ...] = tuple(kinds[i] for i in order)
        self._pos = {node_id: i for i, node_id in enumerate(self.ids)}
        self._rollup = Rollup([tags[i] for i in order], [owners[i] for i in order])
        self._src = rank[np.asarray(sources, dtype=np.int64)]
        self._dst = rank[np.asarray(targets, dtype=np.int64)]
        self._codes = np.fromiter((KIND_CODES[k] for k in edge_kinds), np.int64, len(edge_kinds))
        self.edge_count = len(edge_kinds)
        self._impact = Way(n, self._src, self._dst, self._codes, *_AFFECTS)
        self._impact.prepare()
        entry = [INTERNET_FACING in tags[i] for i in order]
        self._entry = np.asarray(entry, dtype=bool)
        self._entry_py = entry

    @cached_property
    def _depends(self) -> Way:
        """The impact edges the other way (what a node depends on), built on first use."""
        return Way(len(self.ids), self._dst, self._src, self._codes, *_AFFECTS)

    @cached_property
    def _flow_back(self) -> Way:
        """Request-flow edges reversed: walked from a node back to the entry points."""
        return Way(len(self.ids), self._dst, self._src, self._codes, *_FLOWS)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._pos

    @property
    def node_count(self) -> int:
        return len(self.ids)

    def blast(
        self,
        targets: Sequence[str],
        depth: int | None = None,
        kinds: Collection[EdgeKind] | None = None,
    ) -> Blast:
        """Everything a change to ``targets`` affects (see the module docstring)."""
        return self._radius(targets, depth, kinds, self._impact)

    def dependencies(
        self,
        nodes: str | Sequence[str],
        depth: int | None = None,
        kinds: Collection[EdgeKind] | None = None,
    ) -> Blast:
        """Everything ``nodes`` depend on: a change to any of them affects ``nodes``."""
        starts = [nodes] if isinstance(nodes, str) else nodes
        return self._radius(starts, depth, kinds, self._depends)

    def reach(self, node: str) -> Reach:
        """Whether any ``internet-facing`` node reaches ``node``; the nearest one's path."""
        if node not in self._pos:
            return Reach(node, False, False, None, ())
        way = self._flow_back
        layers = way.layers([self._pos[node]], stop=self._entry_py, stop_np=self._entry)
        hits = [int(v) for v in layers[-1] if self._entry_py[v]]
        if not hits:
            return Reach(node, True, False, None, ())
        found = _Walk(self, layers, way.back, None)
        entry = min(hits)
        path = tuple(self.ids[v] for v in reversed(found.path(entry)))
        return Reach(node, True, True, self.ids[entry], path)

    def _radius(
        self,
        targets: Sequence[str],
        depth: int | None,
        kinds: Collection[EdgeKind] | None,
        way: Way,
    ) -> Blast:
        if depth is not None and depth < 0:
            raise InputError("depth", f"must be 0 or more, not {depth}")
        known = sorted({t for t in targets if t in self._pos})
        unknown = tuple(sorted({t for t in targets if t not in self._pos}))
        mask = None if kinds is None else sum(1 << KIND_CODES[k] for k in set(kinds))
        starts = [self._pos[t] for t in known]
        layers = way.layers(starts, depth, mask)
        tags, owners = self._rollup.union(layers)
        classes = sorted(
            {t[len(REGULATED_PREFIX) :] for t in tags if t.startswith(REGULATED_PREFIX)}
        )
        return Blast(
            version=self.version,
            targets=tuple(known),
            unknown=unknown,
            count=sum(len(layer) for layer in layers),
            tags=tags,
            owners=owners,
            data_classes=tuple(classes),
            revenue_path=REVENUE_PATH in tags,
            _walk=_Walk(self, layers, way.back, mask),
        )


class _Walk:
    """The layers of one walk and what rebuilds its paths on demand."""

    def __init__(self, index: GraphIndex, layers: list[Layer], back: Csr, mask: int | None):
        self.index = index
        self.layers = layers
        self.back = back
        self.mask = mask

    @cached_property
    def distance(self) -> dict[int, int]:
        found: dict[int, int] = {}
        for d, layer in enumerate(self.layers):
            found.update(dict.fromkeys(as_list(layer), d))
        return found

    def _previous(self, v: int, d: int) -> int:
        """v's first neighbour (by id) one hop nearer the start, along an allowed kind."""
        back, mask, distance = self.back, self.mask, self.distance
        for j in range(back.ip[v], back.ip[v + 1]):
            if distance.get(back.nb[j]) == d - 1 and (mask is None or back.kb[j] & mask):
                return back.nb[j]
        raise AssertionError(f"no predecessor for node {v} at distance {d}")

    def path(self, v: int) -> tuple[int, ...]:
        """Node positions from a start node to ``v``, inclusive."""
        d = self.distance[v]
        steps = [v]
        while d > 0:
            v = self._previous(v, d)
            steps.append(v)
            d -= 1
        return tuple(reversed(steps))

    def nodes(self, limit: int | None) -> tuple[BlastNode, ...]:
        """Nodes by (distance, id) with their paths, the first ``limit`` or all. Taking
        nodes nearest first means every node's predecessor has been taken before it."""
        ids, kinds = self.index.ids, self.index.kinds
        paths: dict[int, tuple[str, ...]] = {}
        out: list[BlastNode] = []
        for d, layer in enumerate(self.layers):
            for v in sorted(as_list(layer)):
                if limit is not None and len(out) >= limit:
                    return tuple(out)
                path = (ids[v],) if d == 0 else (*paths[self._previous(v, d)], ids[v])
                paths[v] = path
                out.append(BlastNode(ids[v], kinds[v], d, path))
        return tuple(out)
