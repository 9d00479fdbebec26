"""Rendering a small graph as JSON, DOT and Mermaid: golden text, stable across runs."""

from __future__ import annotations

import json

from placet.graph import render
from placet.graph.merge import Graph, merge
from placet.graph.model import EdgeFact, EdgeKind, ImportResult, NodeFact, NodeKind, Provenance

P = Provenance("k8s", "kubernetes", "app.yaml", 3)


def small() -> Graph:
    nodes = (
        NodeFact("web", NodeKind.SERVICE, P, name="web", tags=("internet-facing",)),
        NodeFact("cart", NodeKind.SERVICE, P, name="cart", owner="team:shop"),
        NodeFact("redis", NodeKind.DATASTORE, P, name="redis"),
        NodeFact("api:cart", NodeKind.API, P, name="cart"),
        NodeFact('odd "quoted" id', NodeKind.EXTERNAL, P),
        NodeFact("a-b", NodeKind.QUEUE, P),
        NodeFact("a.b", NodeKind.PIPELINE, P),
    )
    edges = (
        EdgeFact("web", "api:cart", EdgeKind.CONSUMES_API, P),
        EdgeFact("cart", "api:cart", EdgeKind.PROVIDES_API, P),
        EdgeFact("cart", "redis", EdgeKind.WRITES, P),
        EdgeFact("cart", "team:shop", EdgeKind.OWNED_BY, P),
        EdgeFact("web", 'odd "quoted" id', EdgeKind.CALLS, P),
        EdgeFact("a.b", "a-b", EdgeKind.DEPLOYS, P),
    )
    return merge([ImportResult("kubernetes", nodes, edges)])


DOT = r"""digraph placet {
  rankdir=LR;
  node [fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  "a-b" [label="a-b\nqueue", shape=cds];
  "a.b" [label="a.b\npipeline", shape=hexagon];
  "api:cart" [label="api:cart\napi", shape=ellipse];
  "cart" [label="cart\nservice", shape=box];
  "odd \"quoted\" id" [label="odd \"quoted\" id\nexternal", shape=box, style=dashed];
  "redis" [label="redis\ndatastore", shape=cylinder];
  "team:shop" [label="team:shop\nteam", shape=house];
  "web" [label="web\nservice, internet-facing", shape=box, peripheries=2];
  "a.b" -> "a-b" [label="deploys"];
  "cart" -> "api:cart" [label="provides_api"];
  "cart" -> "redis" [label="writes"];
  "cart" -> "team:shop" [label="owned_by", style=dashed];
  "web" -> "api:cart" [label="consumes_api"];
  "web" -> "odd \"quoted\" id" [label="calls"];
}
"""

MERMAID = """flowchart LR
  n_a_b[/"a-b<br/>queue"/]
  n_a_b_2{{"a.b<br/>pipeline"}}
  n_api_cart(["api:cart<br/>api"])
  n_cart["cart<br/>service"]
  n_odd__quoted__id>"odd #quot;quoted#quot; id<br/>external"]
  n_redis[("redis<br/>datastore")]
  n_team_shop("team:shop<br/>team")
  n_web["web<br/>service, internet-facing"]
  n_a_b_2 -->|deploys| n_a_b
  n_cart -->|provides_api| n_api_cart
  n_cart -->|writes| n_redis
  n_cart -.->|owned_by| n_team_shop
  n_web -->|consumes_api| n_api_cart
  n_web -->|calls| n_odd__quoted__id
"""


def test_dot_quotes_every_id_and_draws_shapes_by_kind() -> None:
    assert render.to_dot(small()) == DOT


def test_mermaid_sanitises_ids_uniquely_and_escapes_labels() -> None:
    assert render.to_mermaid(small()) == MERMAID


def test_json_is_the_canonical_document_indented() -> None:
    graph = small()
    text = render.to_json(graph)
    assert text.endswith("}\n")
    assert json.loads(text) == graph.as_document()
    assert text.splitlines()[1] == '  "conflicts": [],'


def test_rendering_does_not_depend_on_the_order_facts_arrived_in() -> None:
    graph = small()
    nodes, edges = graph.nodes, graph.edges
    reordered = merge(
        [
            ImportResult(
                "kubernetes",
                tuple(
                    NodeFact(
                        n.id,
                        n.kind,
                        P,
                        name=n.name,
                        tags=n.tags,
                        owner=n.owner if n.id != "team:shop" else None,
                    )
                    for n in reversed(list(nodes.values()))
                    if n.id != "team:shop"
                ),
                tuple(EdgeFact(e.source, e.target, e.kind, P) for e in reversed(edges)),
            )
        ]
    )
    assert render.to_dot(reordered) == DOT
    assert render.to_mermaid(reordered) == MERMAID
    assert render.to_json(reordered) == render.to_json(graph)
