"""The placet-graph.yaml overlay: its documented format, and strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from placet.graph.errors import GraphInputError
from placet.graph.importers import overlay
from placet.graph.model import EdgeKind, NodeKind

EXAMPLE = """\
placet-graph: v1
nodes:
  checkoutservice:
    kind: service
    owner: team:Payments
    tier: 1
    tags: [revenue-path, regulated-data:pci, java]
    source_paths: [src/checkoutservice/]
    entry_point: true
    description: Takes the money
    attributes: {runbook: https://example.com/checkout}
  payments-db: {kind: datastore, data_classes: [pci, pii]}
  team:payments: {attributes: {slack: "#payments"}}
  frontend: {revenue_path: true}
edges:
  - {from: checkoutservice, to: payments-db, kind: writes, attributes: {table: orders}}
  - {from: checkoutservice, to: Environment:Production, kind: part_of}
  - {from: frontend, to: api:cart, kind: consumes_api}
"""


def _write(tmp_path: Path, text: str, name: str = "placet-graph.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_nodes(tmp_path: Path) -> None:
    file = _write(tmp_path, EXAMPLE)
    result = overlay.parse([file], "ops")
    nodes = {n.id: n for n in result.nodes}
    assert list(nodes) == ["checkoutservice", "payments-db", "team:payments", "frontend"]
    checkout = nodes["checkoutservice"]
    assert checkout.kind is NodeKind.SERVICE
    assert checkout.owner == "team:payments"
    assert checkout.tier == "1"
    assert checkout.tags == ("revenue-path", "regulated-data:pci", "java", "internet-facing")
    assert checkout.source_paths == ("src/checkoutservice/",)
    assert checkout.attributes == {
        "runbook": "https://example.com/checkout",
        "description": "Takes the money",
    }
    assert checkout.provenance.line == 3
    assert checkout.provenance.importer == "overlay"
    assert checkout.provenance.source == "ops"
    assert checkout.provenance.file == str(file)
    assert nodes["payments-db"].kind is NodeKind.DATASTORE
    assert nodes["payments-db"].tags == ("regulated-data:pci", "regulated-data:pii")
    assert nodes["team:payments"].kind is NodeKind.TEAM
    assert nodes["team:payments"].name == "payments"
    assert nodes["frontend"].kind is NodeKind.SERVICE  # the default kind
    assert nodes["frontend"].tags == ("revenue-path",)
    assert result.warnings == ()


def test_example_edges(tmp_path: Path) -> None:
    result = overlay.parse([_write(tmp_path, EXAMPLE)], "ops")
    edges = [(e.source, e.kind, e.target, e.provenance.line) for e in result.edges]
    assert edges == [
        ("checkoutservice", EdgeKind.OWNED_BY, "team:payments", 3),
        ("checkoutservice", EdgeKind.WRITES, "payments-db", 16),
        ("checkoutservice", EdgeKind.PART_OF, "environment:production", 17),
        ("frontend", EdgeKind.CONSUMES_API, "api:cart", 18),
    ]
    assert result.edges[1].attributes == {"table": "orders"}
    assert result.coverage == ()


def test_kind_given_without_prefix_builds_the_prefixed_id(tmp_path: Path) -> None:
    text = "placet-graph: v1\nnodes:\n  checkout: {kind: team, owner: user:Alice}\n"
    result = overlay.parse([_write(tmp_path, text)], "ops")
    (node,) = result.nodes
    assert (node.id, node.kind, node.owner) == ("team:checkout", NodeKind.TEAM, "user:alice")


def test_empty_sections_are_allowed(tmp_path: Path) -> None:
    result = overlay.parse([_write(tmp_path, "placet-graph: v1\nnodes: {}\nedges: []\n")], "o")
    assert result.nodes == () and result.edges == ()


def test_detect_by_header_or_name(tmp_path: Path) -> None:
    assert overlay.detect(Path("any.yaml"), "# mine\nplacet-graph: v1\nnodes: {}\n")
    assert overlay.detect(Path("placet-graph.yml"), "nodes: {}\n")
    assert not overlay.detect(Path("other.yaml"), "services:\n  web: {}\n")


BAD = [
    ("nodes: {}\n", 1, "'placet-graph: v1' header missing"),
    ("placet-graph: v2\n", 1, "header found 'v2'"),
    ("placet-graph: v1\nnode: {}\n", 2, "unknown key 'node'"),
    ("placet-graph: v1\nnodes:\n  a: {kind: servce}\n", 3, "nodes.a.kind: 'servce'"),
    ("placet-graph: v1\nnodes:\n  a: {colour: red}\n", 3, "nodes.a: unknown key 'colour'"),
    (
        "placet-graph: v1\nnodes:\n  a:\n    tags:\n      - ok\n      - regulated-data:pcii\n",
        6,
        "unknown data class 'pcii'",
    ),
    ("placet-graph: v1\nnodes:\n  a:\n    data_classes: [phi, xyz]\n", 4, "data class 'xyz'"),
    ("placet-graph: v1\nnodes:\n  a: {owner: payments}\n", 3, "must be team:<name>"),
    ("placet-graph: v1\nnodes:\n  a: {tier: true}\n", 3, "tier must be a string or an integer"),
    ("placet-graph: v1\nnodes:\n  a: {entry_point: 'yes'}\n", 3, "must be true or false"),
    ("placet-graph: v1\nnodes:\n  a: {tags: web}\n", 3, "must be a list of strings"),
    ("placet-graph: v1\nnodes:\n  a: {}\n  A: {}\n", 4, "same id 'a'"),
    ("placet-graph: v1\nnodes:\n  db:x: {}\n", 3, "unknown kind prefix 'db'"),
    ("placet-graph: v1\nnodes:\n  team:x: {kind: service}\n", 3, "contradicts the prefix"),
    ("placet-graph: v1\nnodes: [a]\n", 2, "nodes must be a mapping"),
    ("placet-graph: v1\nedges:\n  - {from: a, to: b}\n", 3, "missing 'kind'"),
    ("placet-graph: v1\nedges:\n  - {from: a, to: b, kind: likes}\n", 3, "'likes'"),
    ("placet-graph: v1\nedges:\n  - {from: a, to: b, kind: calls, via: x}\n", 3, "'via'"),
    ("placet-graph: v1\nedges:\n  - {from: a, to: 'db:b', kind: calls}\n", 3, "prefix"),
    ("placet-graph: v1\nedges: {a: b}\n", 2, "edges must be a list"),
    ("placet-graph: v1\n---\nplacet-graph: v1\n", 3, "found several"),
    ("placet-graph: v1\nnodes:\n  a: {}\n  a: {}\n", 4, "duplicate key 'a'"),
    ("placet-graph: v1\nnodes:\n  a: {tags: [x\n", 4, "malformed YAML"),
    ("", None, "empty file"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD)
def test_strict_validation_names_file_and_line(
    tmp_path: Path, text: str, line: int | None, problem: str
) -> None:
    file = _write(tmp_path, text)
    with pytest.raises(GraphInputError) as caught:
        overlay.parse([file], "ops")
    assert caught.value.file == str(file)
    assert caught.value.line == line
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"{file}:{line}" if line else str(file))
