"""Changed file paths to the nodes that own them: source paths first, then CODEOWNERS."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from placet.graph.importers.codeowners import owners_of
from placet.graph.model import ImportResult, OwnershipRule
from placet.graph.version import Graph


def _normal(path: str) -> str:
    text = path.strip().replace("\\", "/")
    while text.startswith(("./", "/")):
        text = text[2:] if text.startswith("./") else text[1:]
    return text.rstrip("/")


def ownership_rules(results: Iterable[ImportResult]) -> tuple[OwnershipRule, ...]:
    """Every CODEOWNERS rule in import order (the last matching rule wins)."""
    return tuple(rule for result in results for rule in result.ownership)


def owning(graph: Graph, rules: Sequence[OwnershipRule], paths: Sequence[str]) -> dict[str, Any]:
    """For each path: the nodes whose source paths hold it, and its owners.

    A node holds a path when one of its ``source_paths`` is the path or a directory
    above it. Owners are the CODEOWNERS owners of the path plus the owners of those
    nodes, so a path no node claims still names the people answerable for it.
    """
    prefixes = [
        (node.id, _normal(source))
        for node in graph.nodes.values()
        for source in node.source_paths
        if _normal(source)
    ]
    found = []
    all_nodes: set[str] = set()
    all_owners: set[str] = set()
    for path in paths:
        normal = _normal(path)
        nodes = sorted(
            {
                node_id
                for node_id, prefix in prefixes
                if normal == prefix or normal.startswith(prefix + "/")
            }
        )
        owners = set(owners_of(normal, rules))
        for node_id in nodes:
            owners.update(graph.nodes[node_id].owners)
        found.append({"path": path, "nodes": nodes, "owners": sorted(owners)})
        all_nodes.update(nodes)
        all_owners.update(owners)
    return {"paths": found, "nodes": sorted(all_nodes), "owners": sorted(all_owners)}
