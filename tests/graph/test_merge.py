"""Merging facts from several sources: provenance kept, conflicts listed, one digest per graph."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from placet.domain.canonical import digest_of
from placet.graph.importers import registry
from placet.graph.merge import ConflictKind, Graph, merge
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


def prov(source: str, line: int | None = 1, file: str = "f.yaml") -> Provenance:
    return Provenance(source, f"{source}-importer", file, line)


def node(node_id: str, source: str, kind: NodeKind = NodeKind.SERVICE, **kw: Any) -> NodeFact:
    line = kw.pop("line", 1)
    return NodeFact(node_id, kind, prov(source, line), name=kw.pop("name", node_id), **kw)


def edge(a: str, b: str, source: str, kind: EdgeKind = EdgeKind.CALLS, **kw: Any) -> EdgeFact:
    return EdgeFact(a, b, kind, prov(source, kw.pop("line", 1)), kw.pop("attributes", {}))


def result(*facts: NodeFact | EdgeFact | Coverage | ImportWarning) -> ImportResult:
    return ImportResult(
        importer="test",
        nodes=tuple(f for f in facts if isinstance(f, NodeFact)),
        edges=tuple(f for f in facts if isinstance(f, EdgeFact)),
        coverage=tuple(f for f in facts if isinstance(f, Coverage)),
        warnings=tuple(f for f in facts if isinstance(f, ImportWarning)),
    )


def conflicts_of(graph: Graph, kind: ConflictKind) -> list[Any]:
    return [c for c in graph.conflicts if c.kind is kind]


def test_the_same_node_from_two_sources_keeps_both_provenances_and_unions_fields() -> None:
    graph = merge(
        [
            result(
                node(
                    "cart",
                    "k8s",
                    tags=("internet-facing",),
                    source_paths=("src/cart",),
                    attributes={"image": "cart:1"},
                    line=7,
                )
            ),
            result(
                node(
                    "cart",
                    "backstage",
                    name="Cart",
                    tags=("revenue-path",),
                    source_paths=("src/cart", "docs/cart"),
                    attributes={"lifecycle": "prod"},
                )
            ),
        ]
    )
    cart = graph.nodes["cart"]
    assert cart.kind is NodeKind.SERVICE
    assert cart.name == "Cart"  # backstage sorts first; its name is not empty
    assert cart.tags == ("internet-facing", "revenue-path")
    assert cart.source_paths == ("docs/cart", "src/cart")
    assert dict(cart.attributes) == {"backstage": {"lifecycle": "prod"}, "k8s": {"image": "cart:1"}}
    assert cart.provenance == (prov("backstage"), prov("k8s", 7))
    assert cart.sources == ("backstage", "k8s")
    assert graph.conflicts == ()


def test_edges_keep_attributes_per_source_and_sum_counters_within_a_source() -> None:
    graph = merge(
        [
            result(
                edge("web", "cart", "traces", attributes={"requests": 3, "errors": 1, "via": "a"}),
                edge(
                    "web",
                    "cart",
                    "traces",
                    line=2,
                    attributes={"requests": 4, "errors": 0, "via": "b"},
                ),
            ),
            result(edge("web", "cart", "metrics", attributes={"requests": 100})),
            result(node("web", "k8s"), node("cart", "k8s")),
        ]
    )
    web_cart = graph.edge("web", "cart", EdgeKind.CALLS)
    assert web_cart is not None
    assert dict(web_cart.attributes) == {
        "metrics": {"requests": 100},
        "traces": {"errors": 1, "requests": 7, "via": ["a", "b"]},
    }
    assert [p.source for p in web_cart.provenance] == ["metrics", "traces", "traces"]
    assert graph.edge("cart", "web", EdgeKind.CALLS) is None


def test_two_sources_naming_different_owners_is_a_conflict_and_both_are_kept() -> None:
    graph = merge(
        [
            result(node("cart", "backstage", owner="team:checkout")),
            result(
                node("cart", "codeowners", owner="user:alice"),
                edge("cart", "user:bob", "codeowners", EdgeKind.OWNED_BY),
            ),
        ]
    )
    assert graph.nodes["cart"].owners == ("team:checkout", "user:alice", "user:bob")
    assert graph.nodes["cart"].owner is None
    [conflict] = conflicts_of(graph, ConflictKind.OWNER)
    assert conflict.subject == "cart"
    assert dict(conflict.values) == {
        "backstage": ("team:checkout",),
        "codeowners": ("user:alice", "user:bob"),
    }
    assert conflict.detail == "sources name different owners for cart"


def test_sources_that_agree_on_the_owner_or_a_single_source_with_co_owners_do_not_conflict() -> (
    None
):
    graph = merge(
        [
            result(
                node("cart", "backstage", owner="team:checkout"),
                node("web", "codeowners", owner="user:alice"),
                node("web", "codeowners", owner="user:bob", line=2),
            ),
            result(edge("cart", "team:checkout", "k8s", EdgeKind.OWNED_BY)),
        ]
    )
    assert graph.nodes["cart"].owners == ("team:checkout",)
    assert graph.nodes["cart"].owner == "team:checkout"
    assert graph.nodes["web"].owners == ("user:alice", "user:bob")
    assert graph.conflicts == ()
    # the owner named only by an owned_by edge becomes a team node, without a warning
    assert graph.nodes["team:checkout"].kind is NodeKind.TEAM
    assert graph.warnings == ()


def test_external_yields_to_any_other_kind_without_a_conflict() -> None:
    graph = merge(
        [
            result(node("redis", "k8s", NodeKind.EXTERNAL, name="")),
            result(node("redis", "compose", NodeKind.DATASTORE, name="Redis")),
        ]
    )
    assert graph.nodes["redis"].kind is NodeKind.DATASTORE
    assert graph.nodes["redis"].name == "Redis"
    assert graph.conflicts == ()


def test_two_specific_kinds_keep_the_most_specific_and_list_the_conflict() -> None:
    graph = merge(
        [
            result(node("redis", "compose", NodeKind.SERVICE)),
            result(node("redis", "backstage", NodeKind.DATASTORE)),
            result(node("redis", "k8s", NodeKind.EXTERNAL)),
        ]
    )
    assert graph.nodes["redis"].kind is NodeKind.DATASTORE
    [conflict] = conflicts_of(graph, ConflictKind.NODE_KIND)
    assert conflict.detail == "sources call redis datastore, service; kept datastore"
    assert dict(conflict.values) == {
        "backstage": ("datastore",),
        "compose": ("service",),
        "k8s": ("external",),
    }


def test_different_tiers_keep_the_first_in_order_and_list_the_conflict() -> None:
    graph = merge(
        [
            result(node("cart", "overlay", tier="tier-2")),
            result(node("cart", "backstage", tier="tier-1")),
            result(node("web", "overlay", tier="tier-3"), node("web", "backstage", tier="tier-3")),
        ]
    )
    assert graph.nodes["cart"].tier == "tier-1"
    assert graph.nodes["web"].tier == "tier-3"
    [conflict] = conflicts_of(graph, ConflictKind.TIER)
    assert conflict.subject == "cart"
    assert dict(conflict.values) == {"backstage": ("tier-1",), "overlay": ("tier-2",)}


def netpol_and_env_vars() -> list[ImportResult]:
    """k8s env vars list frontend's outgoing calls; a NetworkPolicy lists cart's incoming."""
    return [
        result(
            node("frontend", "k8s"),
            node("cart", "k8s"),
            node("ads", "k8s"),
            edge("frontend", "cart", "k8s"),
            edge("checkout", "cart", "k8s"),
            Coverage("frontend", EdgeKind.CALLS, Direction.OUTGOING, prov("k8s", 3)),
        ),
        result(
            edge("frontend", "cart", "netpol"),
            edge("frontend", "ads", "netpol"),
            Coverage("cart", EdgeKind.CALLS, Direction.INCOMING, prov("netpol", 9)),
            Coverage("cart", EdgeKind.CALLS, Direction.INCOMING, prov("netpol", 10)),
        ),
    ]


def test_an_edge_a_covering_source_does_not_list_is_a_conflict_in_each_direction() -> None:
    graph = merge(netpol_and_env_vars())
    edge_conflicts = conflicts_of(graph, ConflictKind.EDGE)
    assert [(c.subject, c.detail) for c in edge_conflicts] == [
        (
            "checkout->cart (calls)",
            "edge checkout->cart (calls) is in k8s but netpol lists all of cart's incoming "
            "calls edges and not this one",
        ),
        (
            "frontend->ads (calls)",
            "edge frontend->ads (calls) is in netpol but k8s lists all of frontend's outgoing "
            "calls edges and not this one",
        ),
    ]
    assert dict(edge_conflicts[1].values) == {"k8s": ("absent",), "netpol": ("present",)}
    assert edge_conflicts[1].edge == ("frontend", "ads", EdgeKind.CALLS)
    assert edge_conflicts[1].as_dict()["edge"] == {
        "source": "frontend",
        "target": "ads",
        "kind": "calls",
    }
    # the two coverage claims of netpol are one claim: one conflict, both provenances kept
    assert len(graph.coverage) == 3
    # the edges themselves are all kept
    assert graph.edge("frontend", "ads", EdgeKind.CALLS) is not None
    assert graph.edge("checkout", "cart", EdgeKind.CALLS) is not None


def test_coverage_of_one_kind_says_nothing_about_another_kind() -> None:
    graph = merge(
        [
            result(
                node("frontend", "k8s"),
                node("cart", "k8s"),
                Coverage("frontend", EdgeKind.CALLS, Direction.OUTGOING, prov("k8s")),
            ),
            result(
                edge("frontend", "cart", "compose", EdgeKind.DEPENDS_ON),
                edge("frontend", "cart", "k8s-other", EdgeKind.CALLS),
            ),
            result(edge("frontend", "cart", "k8s", EdgeKind.CALLS)),
        ]
    )
    assert graph.conflicts == ()


def test_an_edge_to_a_node_no_source_defines_gets_an_implicit_node_and_a_warning() -> None:
    graph = merge(
        [
            result(
                node("web", "k8s"),
                edge("web", "api:payments", "k8s", line=12),
                edge("web", "ghost", "k8s", line=13),
            )
        ]
    )
    assert graph.nodes["api:payments"].kind is NodeKind.API
    assert graph.nodes["api:payments"].name == "payments"
    assert graph.nodes["ghost"].kind is NodeKind.EXTERNAL
    assert graph.nodes["ghost"].provenance == (prov("k8s", 13),)
    assert [str(w) for w in graph.warnings] == [
        "f.yaml:12: edge web->api:payments (calls) names api:payments, which no source "
        "defines; kept as an implicit node",
        "f.yaml:13: edge web->ghost (calls) names ghost, which no source defines; kept as an "
        "implicit node",
    ]


def test_warnings_are_carried_sorted_and_once() -> None:
    w1 = ImportWarning("b.yaml", 3, "unknown kind Widget")
    w2 = ImportWarning("a.yaml", None, "no importer recognised this file")
    graph = merge([result(w1, w2), result(w1)])
    assert graph.warnings == (w2, w1)
    assert graph.as_document()["warnings"] == [
        {"file": "a.yaml", "line": None, "message": "no importer recognised this file"},
        {"file": "b.yaml", "line": 3, "message": "unknown kind Widget"},
    ]


def sample() -> list[ImportResult]:
    return [
        *netpol_and_env_vars(),
        result(
            node(
                "cart",
                "backstage",
                NodeKind.SERVICE,
                owner="team:checkout",
                tier="1",
                tags=("regulated-data:pci",),
                attributes={"n": 1.5, "set": {"b", "a"}},
            ),
            edge("cart", "redis", "backstage", EdgeKind.WRITES),
            node("redis", "backstage", NodeKind.DATASTORE),
            ImportWarning("x.yaml", 2, "odd"),
        ),
        result(
            node("cart", "overlay", owner="team:payments", tier="0"),
            edge("cart", "redis", "overlay", EdgeKind.WRITES, attributes={"ops": 2}),
        ),
    ]


def shuffled(results: list[ImportResult], seed: int) -> list[ImportResult]:
    rng = random.Random(seed)
    out = []
    for r in results:
        nodes, edges = list(r.nodes), list(r.edges)
        rng.shuffle(nodes)
        rng.shuffle(edges)
        out.append(ImportResult(r.importer, tuple(nodes), tuple(edges), r.coverage, r.warnings))
    rng.shuffle(out)
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_the_order_of_results_and_facts_does_not_change_the_graph_or_its_digest(seed: int) -> None:
    expected = merge(sample())
    again = merge(shuffled(sample(), seed))
    assert again.as_document() == expected.as_document()
    assert again.digest == expected.digest
    assert again == expected


def test_the_digest_is_the_sha256_of_the_canonical_document_and_follows_every_fact() -> None:
    graph = merge(sample())
    document = graph.as_document()
    assert graph.digest == digest_of(document)
    assert document["format"] == "placet.graph/v1"
    assert [n["id"] for n in document["nodes"]] == sorted(n["id"] for n in document["nodes"])
    cart = next(n for n in document["nodes"] if n["id"] == "cart")
    assert cart["attributes"]["backstage"] == {"n": 1.5, "set": ["a", "b"]}
    changed = [*sample(), result(node("cart", "overlay", tags=("new",), line=40))]
    assert merge(changed).digest != graph.digest
    moved = [
        *sample()[:-1],
        result(
            node("cart", "overlay", owner="team:payments", tier="0", line=2),
            edge("cart", "redis", "overlay", EdgeKind.WRITES, attributes={"ops": 2}),
        ),
    ]
    assert merge(moved).digest != graph.digest  # provenance (the line) is part of the version


def test_node_document_and_summary_describe_one_node_with_its_edges_and_conflicts() -> None:
    graph = merge(sample())
    summary = graph.node_summary("cart")
    assert summary == {
        "kind": "service",
        "name": "cart",
        "owners": ["team:checkout", "team:payments"],
        "tier": "0",
        "tags": ["regulated-data:pci"],
    }
    document = graph.node_document("cart")
    assert document is not None
    assert [(e["source"], e["target"], e["kind"]) for e in document["outgoing"]] == [
        ("cart", "redis", "writes")
    ]
    assert [e["source"] for e in document["incoming"]] == ["checkout", "frontend"]
    assert {c["kind"] for c in document["conflicts"]} == {"owner", "tier", "edge"}
    assert graph.node_document("nope") is None
    assert graph.sources == ("backstage", "k8s", "netpol", "overlay")


DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def imported(source: str, *paths: Path) -> list[ImportResult]:
    return registry.run(registry.plan(registry.walk(list(paths))), source)


def test_online_boutique_manifests_and_network_policies_agree_and_both_are_kept() -> None:
    boutique = DATA / "online-boutique"
    graph = merge(
        [
            *imported("k8s", boutique / "kubernetes-manifests.yaml"),
            *imported("netpol", boutique / "network-policies"),
        ]
    )
    to_cart = [e for e in graph.edges if e.target == "cartservice" and e.kind is EdgeKind.CALLS]
    assert [(e.source, e.sources) for e in to_cart] == [
        ("checkoutservice", ("k8s", "netpol")),
        ("frontend", ("k8s", "netpol")),
    ]
    assert not conflicts_of(graph, ConflictKind.EDGE)
    # the address no Service defines is an external node, and the importer's warning is kept
    assert graph.nodes["shoppingassistantservice"].kind is NodeKind.EXTERNAL
    assert any("SHOPPING_ASSISTANT_SERVICE_ADDR" in w.message for w in graph.warnings)


def test_otel_demo_compose_and_backstage_merge_with_their_disagreements_listed() -> None:
    graph = merge(
        [
            *imported("compose", DATA / "otel-demo" / "compose.yaml"),
            *imported("backstage", DATA / "otel-demo-backstage"),
        ]
    )
    assert graph.nodes["frontend"].sources == ("backstage", "compose")
    # Backstage lists all of frontend's dependsOn (as cartservice, ...); compose says cart
    cart = next(c for c in graph.conflicts if c.subject == "frontend->cart (depends_on)")
    assert cart.kind is ConflictKind.EDGE
    assert dict(cart.values) == {"backstage": ("absent",), "compose": ("present",)}
    assert graph.edge("frontend", "cartservice", EdgeKind.DEPENDS_ON) is not None
    assert graph.edge("frontend", "cart", EdgeKind.DEPENDS_ON) is not None
