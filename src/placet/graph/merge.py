"""Merging every source's facts into one frozen, deterministic graph, conflicts kept.

:func:`merge` takes the :class:`~placet.graph.model.ImportResult` of every source and
returns a :class:`Graph`. The result does not depend on the order of the results or of
the facts inside them: facts are sorted before they are combined and every collection in
the graph is sorted, so the same facts always give the same :attr:`Graph.digest`.

How fields combine for a node id:

- kind: ``external`` means "known only by reference" and yields to any other kind
  without a conflict; two different other kinds keep the most specific one
  (:data:`SPECIFICITY`) and record a ``node_kind`` conflict.
- owners: the union of every source's owners (a fact's ``owner`` and the targets of its
  ``owned_by`` edges). Sources that name different owner sets give an ``owner`` conflict.
- tier: one value; several give a ``tier`` conflict and the node keeps the first in sort
  order (``tier-1`` before ``tier-2``).
- tags and source paths: unions. Name: the first non-empty name of a non-external fact.
- attributes: kept per source, never combined across sources (see :func:`_combine`).

Edges are keyed ``(source, target, kind)`` and keep their attributes per source the same
way. A :class:`~placet.graph.model.Coverage` claim by source A over node n, kind k and
direction d makes every edge of kind k at n in direction d that another source has and A
does not an ``edge`` conflict. An edge whose endpoint no source defines gets an implicit
node (kind from the id's prefix, else ``external``) and a warning, except the owner end of
an ``owned_by`` edge: owners (``user:alice``) need not be modelled as nodes.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from placet.domain.canonical import canonical_json
from placet.graph.model import (
    Coverage,
    Direction,
    EdgeFact,
    EdgeKind,
    ImportResult,
    ImportWarning,
    NodeFact,
    NodeKind,
    Provenance,
)
from placet.graph.version import Attributes, Conflict, ConflictKind, Edge, EdgeKey, Graph, Node

__all__ = ["SPECIFICITY", "Conflict", "ConflictKind", "Edge", "Graph", "Node", "merge"]

# Most specific first: a datastore that compose also lists as a service stays a datastore.
SPECIFICITY = (
    NodeKind.DATASTORE,
    NodeKind.QUEUE,
    NodeKind.API,
    NodeKind.PIPELINE,
    NodeKind.ENVIRONMENT,
    NodeKind.TEAM,
    NodeKind.SERVICE,
    NodeKind.EXTERNAL,
)
_PREFIXED = {
    k.value: k for k in (NodeKind.API, NodeKind.TEAM, NodeKind.PIPELINE, NodeKind.ENVIRONMENT)
}
_COUNTER_NAMES = frozenset({"requests", "errors", "failures"})
_COUNTER_SUFFIXES = ("_count", "_total", "_requests", "_errors")
_NO_ATTRIBUTES: Attributes = MappingProxyType({})


def merge(results: Iterable[ImportResult]) -> Graph:
    """Merge the facts of every import result into one graph (order does not matter)."""
    node_facts: dict[str, list[NodeFact]] = defaultdict(list)
    edge_facts: dict[EdgeKey, list[EdgeFact]] = defaultdict(list)
    coverage: set[Coverage] = set()
    warnings: set[ImportWarning] = set()
    for result in results:
        for fact in result.nodes:
            node_facts[fact.id].append(fact)
        for edge_fact in result.edges:
            edge_facts[(edge_fact.source, edge_fact.target, edge_fact.kind)].append(edge_fact)
        coverage.update(result.coverage)
        warnings.update(result.warnings)

    edges = tuple(_merge_edge(key, edge_facts[key]) for key in sorted(edge_facts))
    owned_by: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for edge in edges:
        if edge.kind is EdgeKind.OWNED_BY:
            for source in edge.sources:
                owned_by[edge.source][source].add(edge.target)

    defined = set(node_facts)
    for edge in edges:
        for end in (edge.source, edge.target):
            if end in defined:
                continue
            node_facts[end].extend(_implicit_facts(end, edge))
            if not (edge.kind is EdgeKind.OWNED_BY and end == edge.target):
                warnings.update(_dangling_warnings(end, edge))
    conflicts: list[Conflict] = []
    nodes = {
        node_id: _merge_node(node_id, node_facts[node_id], owned_by[node_id], conflicts)
        for node_id in sorted(node_facts)
    }
    conflicts.extend(_coverage_conflicts(edges, coverage))
    return Graph(
        nodes=MappingProxyType({i: nodes[i] for i in sorted(nodes)}),
        edges=edges,
        conflicts=tuple(sorted(conflicts, key=lambda c: (c.kind, c.subject, c.detail))),
        warnings=tuple(sorted(warnings, key=lambda w: (w.file, w.line or 0, w.message))),
        coverage=tuple(sorted(coverage, key=_coverage_key)),
    )


def _fact_key(provenance: Provenance) -> tuple[str, str, str, int]:
    return (provenance.source, provenance.importer, provenance.file, provenance.line or 0)


def _coverage_key(c: Coverage) -> tuple[str, str, str, tuple[str, str, str, int]]:
    return (c.node, c.kind.value, c.direction.value, _fact_key(c.provenance))


def _merge_node(
    node_id: str,
    facts: list[NodeFact],
    owned_by: Mapping[str, set[str]],
    conflicts: list[Conflict],
) -> Node:
    if len(facts) > 1:
        facts = sorted(
            facts, key=lambda f: (_fact_key(f.provenance), canonical_json(_facts_json(f)))
        )
    kinds: dict[str, set[str]] = defaultdict(set)
    owners: dict[str, set[str]] = defaultdict(set)
    tiers: dict[str, set[str]] = defaultdict(set)
    for fact in facts:
        source = fact.provenance.source
        kinds[source].add(fact.kind.value)
        if fact.owner:
            owners[source].add(fact.owner)
        if fact.tier:
            tiers[source].add(fact.tier)
    for source, named_owners in owned_by.items():
        owners[source].update(named_owners)

    specific = {k for values in kinds.values() for k in values} - {NodeKind.EXTERNAL.value}
    kind = next((k for k in SPECIFICITY if k.value in specific), NodeKind.EXTERNAL)
    all_tiers = sorted({t for values in tiers.values() for t in values})
    if len(specific) > 1:
        detail = f"sources call {node_id} {', '.join(sorted(specific))}; kept {kind.value}"
        conflicts.append(Conflict(ConflictKind.NODE_KIND, node_id, detail, _by_source(kinds)))
    if len({frozenset(v) for v in owners.values()}) > 1:
        detail = f"sources name different owners for {node_id}"
        conflicts.append(Conflict(ConflictKind.OWNER, node_id, detail, _by_source(owners)))
    if len(all_tiers) > 1:
        detail = f"sources give {node_id} tiers {', '.join(all_tiers)}; kept {all_tiers[0]}"
        conflicts.append(Conflict(ConflictKind.TIER, node_id, detail, _by_source(tiers)))

    named = [f.name for f in facts if f.name and f.kind is not NodeKind.EXTERNAL]
    names = named or [f.name for f in facts if f.name]
    return Node(
        id=node_id,
        kind=kind,
        name=names[0] if names else node_id,
        owners=tuple(sorted({o for values in owners.values() for o in values})),
        tier=all_tiers[0] if all_tiers else None,
        tags=tuple(sorted({t for f in facts for t in f.tags})),
        source_paths=tuple(sorted({p for f in facts for p in f.source_paths})),
        attributes=_attributes_by_source((f.provenance.source, f.attributes) for f in facts),
        provenance=_provenance(f.provenance for f in facts),
    )


def _facts_json(fact: NodeFact) -> dict[str, Any]:
    """A sort key that orders two facts with the same provenance the same way every time."""
    return {
        "kind": fact.kind.value,
        "name": fact.name,
        "owner": fact.owner,
        "tier": fact.tier,
        "tags": sorted(fact.tags),
        "paths": sorted(fact.source_paths),
        "attributes": _jsonable(fact.attributes),
    }


def _merge_edge(key: EdgeKey, facts: list[EdgeFact]) -> Edge:
    if len(facts) > 1:
        facts = sorted(
            facts,
            key=lambda f: (_fact_key(f.provenance), canonical_json(_jsonable(f.attributes))),
        )
    source, target, kind = key
    return Edge(
        source=source,
        target=target,
        kind=kind,
        attributes=_attributes_by_source((f.provenance.source, f.attributes) for f in facts),
        provenance=_provenance(f.provenance for f in facts),
    )


def _implicit_facts(node_id: str, edge: Edge) -> Iterable[NodeFact]:
    """Facts for an edge end no source defines: kind from the id's prefix, else external."""
    prefix, _, rest = node_id.partition(":")
    kind = _PREFIXED.get(prefix, NodeKind.EXTERNAL) if rest else NodeKind.EXTERNAL
    name = rest if kind is not NodeKind.EXTERNAL else node_id
    for p in edge.provenance:
        yield NodeFact(id=node_id, kind=kind, provenance=p, name=name)


def _dangling_warnings(node_id: str, edge: Edge) -> Iterable[ImportWarning]:
    for p in edge.provenance:
        yield ImportWarning(
            p.file,
            p.line,
            f"edge {edge.source}->{edge.target} ({edge.kind.value}) names {node_id}, "
            f"which no source defines; kept as an implicit node",
        )


def _coverage_conflicts(edges: tuple[Edge, ...], coverage: set[Coverage]) -> list[Conflict]:
    at: dict[tuple[str, EdgeKind, Direction], list[Edge]] = defaultdict(list)
    for edge in edges:
        at[(edge.source, edge.kind, Direction.OUTGOING)].append(edge)
        at[(edge.target, edge.kind, Direction.INCOMING)].append(edge)
    claims = sorted({(c.provenance.source, c.node, c.kind, c.direction) for c in coverage})
    found: list[Conflict] = []
    for covering, node, kind, direction in claims:
        for edge in at.get((node, kind, direction), ()):
            others = [s for s in edge.sources if s != covering]
            if covering in edge.sources or not others:
                continue
            values = {covering: ("absent",), **{s: ("present",) for s in others}}
            found.append(
                Conflict(
                    ConflictKind.EDGE,
                    f"{edge.source}->{edge.target} ({kind.value})",
                    f"edge {edge.source}->{edge.target} ({kind.value}) is in {', '.join(others)} "
                    f"but {covering} lists all of {node}'s {direction.value} {kind.value} edges "
                    f"and not this one",
                    values,
                    edge.key,
                )
            )
    return found


def _by_source(values: Mapping[str, set[str]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({s: tuple(sorted(v)) for s, v in sorted(values.items()) if v})


def _provenance(items: Iterable[Provenance]) -> tuple[Provenance, ...]:
    return tuple(sorted(set(items), key=_fact_key))


def _is_counter(key: str, value: Any) -> bool:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return numeric and (key in _COUNTER_NAMES or key.endswith(_COUNTER_SUFFIXES))


def _attributes_by_source(items: Iterable[tuple[str, Mapping[str, Any]]]) -> Attributes:
    """Combine each source's attributes on its own (see :func:`_combine`)."""
    items = [(source, attributes) for source, attributes in items if attributes]
    if not items:
        return _NO_ATTRIBUTES
    by_source: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for source, attributes in items:
        for key, value in attributes.items():
            by_source[source][str(key)].append(_jsonable(value))
    return MappingProxyType(
        {
            source: MappingProxyType({k: _combine(k, values[k]) for k in sorted(values)})
            for source, values in sorted(by_source.items())
            if values
        }
    )


def _combine(key: str, values: list[Any]) -> Any:
    """Counters (``requests``, ``errors``, ``*_count``, ``*_total``...) are summed; other
    values that agree are kept once; values that differ become their sorted distinct list."""
    if all(_is_counter(key, v) for v in values):
        return sum(values)
    distinct = {canonical_json(v): v for v in values}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    return [distinct[k] for k in sorted(distinct)]


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: mappings, lists, str, int, float, bool, None."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=canonical_json)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
