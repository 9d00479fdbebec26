"""``placet-graph.yaml``: placet's own overlay for what no other source knows.

Format (version 1; one YAML document; every key below is optional except the header)::

    placet-graph: v1
    nodes:
      checkoutservice:                 # node name; "<kind>:<name>" for api/pipeline/team/
        kind: service                  #   environment keys. kind defaults to service
        owner: team:payments           # team:<name> or user:<name>; adds an owned_by edge
        tier: "1"                      # string or integer
        tags: [revenue-path, regulated-data:pci, my-free-tag]
        data_classes: [pci]            # shorthand for regulated-data:<class> (pii|pci|phi)
        revenue_path: true             # shorthand for the revenue-path tag
        entry_point: true              # shorthand for the internet-facing tag
        source_paths: [src/checkoutservice/]
        description: Takes the money
        attributes: {runbook: https://example.com/checkout}
      payments-db: {kind: datastore, data_classes: [pci]}
    edges:
      - {from: checkoutservice, to: payments-db, kind: writes, attributes: {table: orders}}

Edge ends name a node of this file by its key, or any node id (``cartservice``,
``api:cart``, ``environment:production``) that another source defines; the merge resolves
them. Validation is strict: an unknown key, a bad kind, an unknown data class, a wrong type
or a missing header raises :class:`GraphInputError` with file and line. No coverage is
claimed: the overlay adds facts, it does not say they are complete.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from placet.graph.errors import GraphInputError
from placet.graph.importers.yamllines import MarkedList, MarkedMap, load_documents, plain
from placet.graph.model import (
    BARE_KINDS,
    DATA_CLASSES,
    INTERNET_FACING,
    REGULATED_PREFIX,
    REVENUE_PATH,
    EdgeFact,
    EdgeKind,
    ImportResult,
    NodeFact,
    NodeKind,
    Provenance,
    node_id,
    normalise_name,
)

NAME = "overlay"
HEADER = "placet-graph"
VERSION = "v1"

_DETECT = re.compile(r"^placet-graph\s*:", re.MULTILINE)
_FILE_NAMES = frozenset({"placet-graph.yaml", "placet-graph.yml"})
_TOP_KEYS = frozenset({HEADER, "nodes", "edges"})
_NODE_KEYS = frozenset(
    {
        "kind",
        "owner",
        "tier",
        "tags",
        "data_classes",
        "revenue_path",
        "entry_point",
        "source_paths",
        "description",
        "attributes",
    }
)
_EDGE_KEYS = frozenset({"from", "to", "kind", "attributes"})
_OWNER = re.compile(r"^(team|user):\S+$")
_PREFIXED = {k.value: k for k in NodeKind if k not in BARE_KINDS}


def detect(path: Path, text: str) -> bool:
    """Whether ``text`` has the ``placet-graph:`` header key (or the file is so named)."""
    return path.name in _FILE_NAMES or _DETECT.search(text) is not None


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """Read overlay files; any violation of the format raises GraphInputError."""
    nodes: list[NodeFact] = []
    edges: list[EdgeFact] = []
    for file in files:
        file_nodes, file_edges = _parse_file(file, source)
        nodes.extend(file_nodes)
        edges.extend(file_edges)
    return ImportResult(
        importer=NAME, nodes=tuple(nodes), edges=tuple(edges), files=tuple(map(str, files))
    )


class _Reader:
    """Validation helpers bound to one file, so every error names it."""

    def __init__(self, file: Path, source: str) -> None:
        self.file, self.source = file, source

    def fail(self, line: int | None, problem: str) -> GraphInputError:
        return GraphInputError(str(self.file), problem, line)

    def prov(self, line: int) -> Provenance:
        return Provenance(self.source, NAME, str(self.file), line)

    def mapping(self, value: Any, line: int, what: str, allowed: frozenset[str]) -> MarkedMap:
        if not isinstance(value, MarkedMap):
            raise self.fail(line, f"{what} must be a mapping")
        for key in value:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(value.line_of(key), f"{what}: unknown key {key!r} (known: {known})")
        return value

    def strings(self, holder: MarkedMap, key: str, what: str) -> list[str]:
        value = holder.get(key, [])
        if not isinstance(value, list):
            raise self.fail(holder.line_of(key), f"{what}.{key} must be a list of strings")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                line = value.line_of(index) if isinstance(value, MarkedList) else holder.line
                raise self.fail(line, f"{what}.{key}: {item!r} is not a non-empty string")
        return [item.strip() for item in value]

    def flag(self, holder: MarkedMap, key: str, what: str) -> bool:
        value = holder.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(holder.line_of(key), f"{what}.{key} must be true or false")
        return value

    def data_class(self, value: str, line: int, what: str) -> str:
        if value not in DATA_CLASSES:
            known = ", ".join(sorted(DATA_CLASSES))
            raise self.fail(line, f"{what}: unknown data class {value!r} (known: {known})")
        return value

    def end(self, value: Any, line: int, what: str, ids: dict[str, str]) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(line, f"{what} must name a node")
        if value in ids:
            return ids[value]
        prefix, sep, rest = value.partition(":")
        if sep and prefix.lower() not in _PREFIXED:
            known = ", ".join(sorted(_PREFIXED))
            raise self.fail(line, f"{what}: {value!r} has unknown kind prefix (known: {known})")
        return node_id(_PREFIXED[prefix.lower()], rest) if sep else normalise_name(value)


def _parse_file(file: Path, source: str) -> tuple[list[NodeFact], list[EdgeFact]]:
    reader = _Reader(file, source)
    documents = [(doc, line) for doc, line in load_documents(file) if doc is not None]
    if not documents:
        raise reader.fail(None, f"empty file; expected a '{HEADER}: {VERSION}' document")
    if len(documents) > 1:
        raise reader.fail(documents[1][1], "expected one YAML document, found several")
    doc, line = documents[0]
    top = reader.mapping(doc, line, "file", _TOP_KEYS)
    if top.get(HEADER) != VERSION:
        found = f"found {top[HEADER]!r}" if HEADER in top else "missing"
        raise reader.fail(top.line_of(HEADER), f"'{HEADER}: {VERSION}' header {found}")
    nodes_map = top.get("nodes") or MarkedMap(top.line_of("nodes"))
    if not isinstance(nodes_map, MarkedMap):
        raise reader.fail(top.line_of("nodes"), "nodes must be a mapping of name to node")
    nodes: list[NodeFact] = []
    ids: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for key, spec in nodes_map.items():
        fact = _node(reader, key, spec, nodes_map.line_of(key))
        if fact.id in by_id:
            message = f"node {key!r} has the same id {fact.id!r} as node {by_id[fact.id]!r}"
            raise reader.fail(nodes_map.line_of(key), message)
        by_id[fact.id] = str(key)
        ids[str(key)] = fact.id
        nodes.append(fact)
    edges = [EdgeFact(n.id, n.owner, EdgeKind.OWNED_BY, n.provenance) for n in nodes if n.owner]
    raw_edges = top.get("edges") or MarkedList(top.line_of("edges"))
    if not isinstance(raw_edges, MarkedList):
        raise reader.fail(top.line_of("edges"), "edges must be a list")
    for index, item in enumerate(raw_edges):
        edges.append(_edge(reader, item, raw_edges.line_of(index), index, ids))
    return nodes, edges


def _node(reader: _Reader, key: Any, spec: Any, line: int) -> NodeFact:
    if not isinstance(key, str) or not key.strip():
        raise reader.fail(line, f"node name {key!r} must be a non-empty string")
    what = f"nodes.{key}"
    spec = reader.mapping(spec if spec is not None else MarkedMap(line), line, what, _NODE_KEYS)
    prefix, sep, rest = key.partition(":")
    name = rest if sep else key
    implied = _PREFIXED.get(prefix.lower()) if sep else None
    if sep and implied is None:
        raise reader.fail(line, f"{what}: name has unknown kind prefix {prefix!r}")
    raw_kind = spec.get("kind", implied.value if implied else NodeKind.SERVICE.value)
    if raw_kind not in {k.value for k in NodeKind}:
        known = ", ".join(k.value for k in NodeKind)
        raise reader.fail(spec.line_of("kind"), f"{what}.kind: {raw_kind!r} (known: {known})")
    kind = NodeKind(raw_kind)
    if implied is not None and kind is not implied:
        raise reader.fail(spec.line_of("kind"), f"{what}: kind {kind} contradicts the prefix")
    owner = spec.get("owner")
    if owner is not None and (not isinstance(owner, str) or not _OWNER.match(owner)):
        message = f"{what}.owner: {owner!r} must be team:<name> or user:<name>"
        raise reader.fail(spec.line_of("owner"), message)
    tier = spec.get("tier")
    if tier is not None and (isinstance(tier, bool) or not isinstance(tier, str | int)):
        raise reader.fail(spec.line_of("tier"), f"{what}.tier must be a string or an integer")
    tags = reader.strings(spec, "tags", what)
    for index, tag in enumerate(tags):
        if tag.startswith(REGULATED_PREFIX):
            tag_line = spec["tags"].line_of(index) if "tags" in spec else line
            reader.data_class(tag.removeprefix(REGULATED_PREFIX), tag_line, f"{what}.tags")
    for index, data_class in enumerate(reader.strings(spec, "data_classes", what)):
        class_line = spec["data_classes"].line_of(index)
        tags.append(REGULATED_PREFIX + reader.data_class(data_class, class_line, what))
    if reader.flag(spec, "revenue_path", what):
        tags.append(REVENUE_PATH)
    if reader.flag(spec, "entry_point", what):
        tags.append(INTERNET_FACING)
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise reader.fail(spec.line_of("description"), f"{what}.description must be a string")
    attributes = spec.get("attributes", {})
    if not isinstance(attributes, dict):
        raise reader.fail(spec.line_of("attributes"), f"{what}.attributes must be a mapping")
    attributes = plain(attributes)
    if description is not None:
        attributes["description"] = description
    return NodeFact(
        id=node_id(kind, name),
        kind=kind,
        provenance=reader.prov(line),
        name=name,
        owner=_owner_id(owner) if isinstance(owner, str) else None,
        tier=None if tier is None else str(tier),
        tags=tuple(dict.fromkeys(tags)),
        source_paths=tuple(dict.fromkeys(reader.strings(spec, "source_paths", what))),
        attributes=attributes,
    )


def _edge(reader: _Reader, item: Any, line: int, index: int, ids: dict[str, str]) -> EdgeFact:
    what = f"edges[{index}]"
    item = reader.mapping(item, line, what, _EDGE_KEYS)
    for key in ("from", "to", "kind"):
        if key not in item:
            raise reader.fail(item.line, f"{what}: missing {key!r}")
    kind = item["kind"]
    if kind not in {k.value for k in EdgeKind}:
        known = ", ".join(k.value for k in EdgeKind)
        raise reader.fail(item.line_of("kind"), f"{what}.kind: {kind!r} (known: {known})")
    attributes = item.get("attributes", {})
    if not isinstance(attributes, dict):
        raise reader.fail(item.line_of("attributes"), f"{what}.attributes must be a mapping")
    return EdgeFact(
        source=reader.end(item["from"], item.line_of("from"), f"{what}.from", ids),
        target=reader.end(item["to"], item.line_of("to"), f"{what}.to", ids),
        kind=EdgeKind(kind),
        provenance=reader.prov(line),
        attributes=plain(attributes),
    )


def _owner_id(owner: str) -> str:
    """``team:<name>`` as a team node id; ``user:<name>`` lowercased as given."""
    kind, _, who = owner.partition(":")
    return node_id(NodeKind.TEAM, who) if kind == "team" else f"user:{who.strip().lower()}"
