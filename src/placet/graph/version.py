"""One immutable graph version: merged nodes and edges, conflicts, and its digest.

:func:`placet.graph.merge.merge` builds a :class:`Graph`; everything in it is sorted, so
:meth:`Graph.as_document` is canonical and :attr:`Graph.digest` (SHA-256 of its RFC 8785
canonical JSON) names the version.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from placet.domain.canonical import digest_of
from placet.graph.model import Coverage, EdgeKind, ImportWarning, NodeKind, Provenance

DOCUMENT_FORMAT = "placet.graph/v1"

EdgeKey = tuple[str, str, EdgeKind]
Attributes = Mapping[str, Mapping[str, Any]]


class ConflictKind(enum.StrEnum):
    OWNER = "owner"
    NODE_KIND = "node_kind"
    TIER = "tier"
    EDGE = "edge"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A disagreement between sources: what it is about and what each source says."""

    kind: ConflictKind
    subject: str
    detail: str
    values: Mapping[str, tuple[str, ...]]
    edge: EdgeKey | None = None  # for edge conflicts: (source, target, kind)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node ids the conflict is about."""
        return (self.edge[0], self.edge[1]) if self.edge else (self.subject,)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "kind": self.kind.value,
            "subject": self.subject,
            "detail": self.detail,
            "values": {source: list(vals) for source, vals in sorted(self.values.items())},
        }
        if self.edge is not None:
            source, target, kind = self.edge
            found["edge"] = {"source": source, "target": target, "kind": kind.value}
        return found


@dataclass(frozen=True, slots=True)
class Node:
    """A merged node: every source's facts about one id, with their provenance."""

    id: str
    kind: NodeKind
    name: str
    owners: tuple[str, ...]
    tier: str | None
    tags: tuple[str, ...]
    source_paths: tuple[str, ...]
    attributes: Attributes
    provenance: tuple[Provenance, ...]

    @property
    def owner(self) -> str | None:
        """The owner when exactly one is known, else None."""
        return self.owners[0] if len(self.owners) == 1 else None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({p.source for p in self.provenance}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "owners": list(self.owners),
            "tier": self.tier,
            "tags": list(self.tags),
            "source_paths": list(self.source_paths),
            "attributes": _plain_attributes(self.attributes),
            "provenance": [p.as_dict() for p in self.provenance],
        }


@dataclass(frozen=True, slots=True)
class Edge:
    """A merged edge keyed (source, target, kind), attributes kept per source."""

    source: str
    target: str
    kind: EdgeKind
    attributes: Attributes
    provenance: tuple[Provenance, ...]

    @property
    def key(self) -> EdgeKey:
        return (self.source, self.target, self.kind)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({p.source for p in self.provenance}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind.value,
            "attributes": _plain_attributes(self.attributes),
            "provenance": [p.as_dict() for p in self.provenance],
        }


@dataclass(frozen=True)
class Graph:
    """One immutable graph version: nodes by id, sorted edges, conflicts and warnings."""

    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[ImportWarning, ...] = ()
    coverage: tuple[Coverage, ...] = ()

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the RFC 8785 canonical JSON of :meth:`as_document`."""
        return digest_of(self.as_document())

    @cached_property
    def _edge_map(self) -> Mapping[EdgeKey, Edge]:
        return {edge.key: edge for edge in self.edges}

    def edge(self, source: str, target: str, kind: EdgeKind) -> Edge | None:
        """The edge keyed (source, target, kind), if any source has it."""
        return self._edge_map.get((source, target, kind))

    @cached_property
    def _edges_at(self) -> Mapping[str, tuple[list[Edge], list[Edge]]]:
        found: dict[str, tuple[list[Edge], list[Edge]]] = {i: ([], []) for i in self.nodes}
        for edge in self.edges:
            found[edge.source][0].append(edge)
            found[edge.target][1].append(edge)
        return found

    def node_summary(self, node_id: str) -> dict[str, Any]:
        """What an assessment says about a target: kind, name, owners, tier and tags."""
        node = self.nodes[node_id]
        return {
            "kind": node.kind.value,
            "name": node.name,
            "owners": list(node.owners),
            "tier": node.tier,
            "tags": list(node.tags),
        }

    def node_document(self, node_id: str) -> dict[str, Any] | None:
        """One node with its outgoing and incoming edges and its conflicts; None if unknown."""
        node = self.nodes.get(node_id)
        if node is None:
            return None
        outgoing, incoming = self._edges_at[node_id]
        return {
            **node.as_dict(),
            "outgoing": [e.as_dict() for e in outgoing],
            "incoming": [e.as_dict() for e in incoming],
            "conflicts": [c.as_dict() for c in self.conflicts if node_id in c.nodes],
        }

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source that contributed a node or an edge."""
        found = {p.source for n in self.nodes.values() for p in n.provenance}
        found.update(p.source for e in self.edges for p in e.provenance)
        return tuple(sorted(found))

    def as_document(self) -> dict[str, Any]:
        """The canonical JSON-able form: everything sorted, nothing left out."""
        return {
            "format": DOCUMENT_FORMAT,
            "nodes": [self.nodes[i].as_dict() for i in sorted(self.nodes)],
            "edges": [e.as_dict() for e in self.edges],
            "conflicts": [c.as_dict() for c in self.conflicts],
            "warnings": [
                {"file": w.file, "line": w.line, "message": w.message} for w in self.warnings
            ],
            "coverage": [
                {
                    "node": c.node,
                    "kind": c.kind.value,
                    "direction": c.direction.value,
                    "provenance": c.provenance.as_dict(),
                }
                for c in self.coverage
            ],
        }


def _plain_attributes(attributes: Attributes) -> dict[str, dict[str, Any]]:
    return {source: dict(values) for source, values in sorted(attributes.items())}
