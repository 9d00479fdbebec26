"""A graph version as JSON, Graphviz DOT or a Mermaid flowchart, byte-for-byte deterministic.

Nodes come in id order and edges in (source, target, kind) order, so the same version
always renders the same text. DOT quotes every id; Mermaid ids are sanitised (``n_`` plus
the id with other characters turned into ``_``, made unique) and the real id is the label.
``owned_by`` and ``part_of`` edges are drawn dashed: they do not carry impact.
"""

from __future__ import annotations

import json
import re

from placet.graph.model import INTERNET_FACING, EdgeKind, NodeKind
from placet.graph.version import Graph, Node

_NON_PROPAGATING = frozenset({EdgeKind.OWNED_BY, EdgeKind.PART_OF})

_DOT_SHAPES = {
    NodeKind.SERVICE: "box",
    NodeKind.API: "ellipse",
    NodeKind.DATASTORE: "cylinder",
    NodeKind.QUEUE: "cds",
    NodeKind.PIPELINE: "hexagon",
    NodeKind.TEAM: "house",
    NodeKind.ENVIRONMENT: "tab",
    NodeKind.EXTERNAL: "box",
}

# Mermaid node shapes: (opening, closing) around the quoted label.
_MERMAID_SHAPES = {
    NodeKind.SERVICE: ("[", "]"),
    NodeKind.API: ("([", "])"),
    NodeKind.DATASTORE: ("[(", ")]"),
    NodeKind.QUEUE: ("[/", "/]"),
    NodeKind.PIPELINE: ("{{", "}}"),
    NodeKind.TEAM: ("(", ")"),
    NodeKind.ENVIRONMENT: ("[/", "\\]"),
    NodeKind.EXTERNAL: (">", "]"),
}
_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def to_json(graph: Graph) -> str:
    """The version's canonical document, indented, keys sorted, ending in a newline."""
    return json.dumps(graph.as_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def to_dot(graph: Graph) -> str:
    """Graphviz DOT: one statement per node (shape by kind) and per edge (labelled by kind)."""
    lines = [
        "digraph placet {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node_id in sorted(graph.nodes):
        node = graph.nodes[node_id]
        label = _dot_quote(_label(node, "\n"))
        attrs = [f"label={label}", f"shape={_DOT_SHAPES[node.kind]}"]
        if node.kind is NodeKind.EXTERNAL:
            attrs.append("style=dashed")
        if INTERNET_FACING in node.tags:
            attrs.append("peripheries=2")
        lines.append(f"  {_dot_quote(node_id)} [{', '.join(attrs)}];")
    for edge in graph.edges:
        attrs = [f"label={_dot_quote(edge.kind.value)}"]
        if edge.kind in _NON_PROPAGATING:
            attrs.append("style=dashed")
        lines.append(
            f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)} [{', '.join(attrs)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart LR``: sanitised ids, the real id and kind as each node's label."""
    names = _mermaid_ids(sorted(graph.nodes))
    lines = ["flowchart LR"]
    for node_id in sorted(graph.nodes):
        node = graph.nodes[node_id]
        opening, closing = _MERMAID_SHAPES[node.kind]
        label = _mermaid_text(_label(node, "<br/>"))
        lines.append(f'  {names[node_id]}{opening}"{label}"{closing}')
    for edge in graph.edges:
        arrow = "-.->" if edge.kind in _NON_PROPAGATING else "-->"
        lines.append(f"  {names[edge.source]} {arrow}|{edge.kind.value}| {names[edge.target]}")
    return "\n".join(lines) + "\n"


def _label(node: Node, newline: str) -> str:
    """The node's id, then its kind (and ``internet-facing`` when tagged so)."""
    second = node.kind.value
    if INTERNET_FACING in node.tags:
        second += f", {INTERNET_FACING}"
    return f"{node.id}{newline}{second}"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _mermaid_ids(node_ids: list[str]) -> dict[str, str]:
    """A Mermaid-safe, unique id for each node id (sorted input gives stable names)."""
    taken: set[str] = set()
    names: dict[str, str] = {}
    for node_id in node_ids:
        base = "n_" + _MERMAID_UNSAFE.sub("_", node_id)
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names[node_id] = name
    return names


def _mermaid_text(text: str) -> str:
    """Label text inside double quotes: quotes and angle brackets as Mermaid entities."""
    text = text.replace('"', "#quot;")
    parts = text.split("<br/>")
    return "<br/>".join(p.replace("<", "#lt;").replace(">", "#gt;") for p in parts)
