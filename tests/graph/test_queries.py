"""Blast radius, dependencies and reachability on hand-built graphs, and the walk engines."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placet.domain.errors import InputError
from placet.graph.importers import registry
from placet.graph.merge import merge
from placet.graph.model import EdgeFact, EdgeKind, ImportResult, NodeFact, NodeKind, Provenance
from placet.graph.queries import BlastNode, GraphIndex
from placet.graph.walk import (
    LARGE_RADIUS,
    ROLLUP_IN_PYTHON,
    Layer,
    Rollup,
    Way,
    estimate_radii,
    walk_numpy,
    walk_python,
)

P = Provenance("test", "test", "graph.yaml", 1)
CALLS, DEPENDS_ON = EdgeKind.CALLS, EdgeKind.DEPENDS_ON


def index(
    edges: Sequence[tuple[str, str] | tuple[str, str, EdgeKind]],
    nodes: Sequence[NodeFact] = (),
) -> GraphIndex:
    facts = [EdgeFact(e[0], e[1], e[2] if len(e) == 3 else CALLS, P) for e in edges]
    ids = {f.source for f in facts} | {f.target for f in facts}
    given_ids = {n.id for n in nodes}
    plain = [NodeFact(i, NodeKind.SERVICE, P, name=i) for i in sorted(ids - given_ids)]
    return GraphIndex(merge([ImportResult("test", (*nodes, *plain), tuple(facts))]))


def radius(blast_nodes: Sequence[BlastNode]) -> list[tuple[str, int, tuple[str, ...]]]:
    return [(n.id, n.distance, n.path) for n in blast_nodes]


def test_a_chain_is_affected_in_hop_order_with_the_path_from_the_target() -> None:
    # c calls b calls a: a change to a affects b, then c
    idx = index([("b", "a"), ("c", "b")])
    blast = idx.blast(["a"])
    assert radius(blast.nodes) == [
        ("a", 0, ("a",)),
        ("b", 1, ("a", "b")),
        ("c", 2, ("a", "b", "c")),
    ]
    assert blast.count == 3
    assert blast.targets == ("a",)
    assert blast.distances == {"a": 0, "b": 1, "c": 2}
    assert radius(idx.blast(["c"]).nodes) == [("c", 0, ("c",))]


def test_depth_limits_the_hops_and_zero_is_the_targets_only() -> None:
    idx = index([("b", "a"), ("c", "b"), ("d", "c")])
    assert [n.id for n in idx.blast(["a"], depth=2).nodes] == ["a", "b", "c"]
    assert [n.id for n in idx.blast(["a"], depth=0).nodes] == ["a"]
    with pytest.raises(InputError, match="depth: must be 0 or more, not -1"):
        idx.blast(["a"], depth=-1)


def test_a_diamond_reaches_the_far_node_once_by_the_first_path_in_id_order() -> None:
    idx = index([("b", "a"), ("c", "a"), ("d", "c"), ("d", "b")])
    assert radius(idx.blast(["a"]).nodes) == [
        ("a", 0, ("a",)),
        ("b", 1, ("a", "b")),
        ("c", 1, ("a", "c")),
        ("d", 2, ("a", "b", "d")),
    ]


def test_cycles_are_legal_every_node_is_visited_once() -> None:
    # a and b call each other; c calls a; a depends on itself
    idx = index([("a", "b"), ("b", "a"), ("c", "a"), ("a", "a", DEPENDS_ON)])
    assert radius(idx.blast(["a"]).nodes) == [
        ("a", 0, ("a",)),
        ("b", 1, ("a", "b")),
        ("c", 1, ("a", "c")),
    ]
    assert radius(idx.blast(["b"]).nodes) == [
        ("b", 0, ("b",)),
        ("a", 1, ("b", "a")),
        ("c", 2, ("b", "a", "c")),
    ]
    assert radius(idx.dependencies("c").nodes) == [
        ("c", 0, ("c",)),
        ("a", 1, ("c", "a")),
        ("b", 2, ("c", "a", "b")),
    ]


def test_each_edge_kind_propagates_as_documented() -> None:
    idx = index(
        [
            ("reader", "db", EdgeKind.READS),
            ("writer", "db", EdgeKind.WRITES),
            ("svc", "api:x", EdgeKind.PROVIDES_API),
            ("client", "api:x", EdgeKind.CONSUMES_API),
            ("pipeline:ci", "svc", EdgeKind.DEPLOYS),
            ("svc", "team:t", EdgeKind.OWNED_BY),
            ("svc", "environment:prod", EdgeKind.PART_OF),
            ("svc", "lib", DEPENDS_ON),
        ]
    )
    # a change to the datastore affects whoever reads or writes it
    assert set(idx.blast(["db"]).distances) == {"db", "reader", "writer"}
    # writes counts both ways: the writer's change affects the data written (and its readers)
    assert idx.blast(["writer"]).distances == {"writer": 0, "db": 1, "reader": 2}
    # the provider's change affects its api and the api's consumers
    assert idx.blast(["svc"]).distances == {"svc": 0, "api:x": 1, "client": 2}
    # a pipeline's change affects what it deploys, and onwards
    assert idx.blast(["pipeline:ci"]).distances == {
        "pipeline:ci": 0,
        "svc": 1,
        "api:x": 2,
        "client": 3,
    }
    # dependencies
    assert idx.blast(["lib"]).distances["svc"] == 1
    # owned_by and part_of never propagate, either way
    assert idx.blast(["team:t"]).distances == {"team:t": 0}
    assert idx.blast(["environment:prod"]).distances == {"environment:prod": 0}
    assert set(idx.dependencies("svc").distances) == {"svc", "lib", "pipeline:ci"}


def test_edge_kinds_filter_the_walk_and_the_paths_follow_only_those_kinds() -> None:
    # the short way from a to d is a depends_on edge; by calls alone it is a, b, c, d
    idx = index([("d", "a", DEPENDS_ON), ("b", "a"), ("c", "b"), ("d", "c")])
    assert radius(idx.blast(["a"]).nodes) == [
        ("a", 0, ("a",)),
        ("b", 1, ("a", "b")),
        ("d", 1, ("a", "d")),
        ("c", 2, ("a", "b", "c")),
    ]
    by_calls = idx.blast(["a"], kinds={CALLS})
    assert radius(by_calls.nodes)[-1] == ("d", 3, ("a", "b", "c", "d"))
    assert idx.blast(["a"], kinds={DEPENDS_ON}).distances == {"a": 0, "d": 1}
    assert idx.blast(["a"], kinds={EdgeKind.OWNED_BY}).distances == {"a": 0}
    assert idx.blast(["a"], kinds=set()).count == 1


def test_unknown_targets_are_listed_not_raised() -> None:
    idx = index([("b", "a")])
    blast = idx.blast(["nope", "a", "nope", "zz"])
    assert blast.targets == ("a",)
    assert blast.unknown == ("nope", "zz")
    assert blast.count == 2
    nothing = idx.blast(["nope"])
    assert (nothing.count, nothing.nodes, nothing.tags, nothing.owners) == (0, (), (), ())
    assert nothing.as_dict()["unknown"] == ["nope"]


def test_several_targets_give_each_node_its_distance_from_the_nearest() -> None:
    idx = index([("b", "a"), ("c", "b"), ("d", "c"), ("d", "x")])
    assert radius(idx.blast(["x", "a"]).nodes) == [
        ("a", 0, ("a",)),
        ("x", 0, ("x",)),
        ("b", 1, ("a", "b")),
        ("d", 1, ("x", "d")),
        ("c", 2, ("a", "b", "c")),
    ]


def test_the_roll_up_covers_tags_owners_data_classes_and_revenue_path() -> None:
    nodes = [
        NodeFact("db", NodeKind.DATASTORE, P, tags=("regulated-data:pci",), owner="team:data"),
        NodeFact("cart", NodeKind.SERVICE, P, tags=("revenue-path",), owner="team:checkout"),
        NodeFact("web", NodeKind.SERVICE, P, tags=("internet-facing", "regulated-data:pii")),
        NodeFact("admin", NodeKind.SERVICE, P, owner="team:ops", tags=("regulated-data:phi",)),
    ]
    idx = index([("cart", "db", EdgeKind.WRITES), ("web", "cart"), ("admin", "web")], nodes)
    blast = idx.blast(["cart"], depth=1)
    assert blast.tags == (
        "internet-facing",
        "regulated-data:pci",
        "regulated-data:pii",
        "revenue-path",
    )
    assert blast.owners == ("team:checkout", "team:data")
    assert blast.data_classes == ("pci", "pii")
    assert blast.revenue_path is True
    assert idx.blast(["admin"]).revenue_path is False
    document = blast.as_dict()
    assert document["nodes"][0] == {
        "id": "cart",
        "kind": "service",
        "distance": 0,
        "path": ["cart"],
    }
    assert document["version"] == idx.version != ""
    assert document["count"] == 3
    assert blast.first(2) == blast.nodes[:2]
    assert blast.as_dict(limit=1)["nodes"] == document["nodes"][:1]
    assert blast.as_dict(limit=1)["count"] == 3
    assert blast.first(10) == blast.nodes


def test_dependencies_walk_what_a_node_depends_on() -> None:
    idx = index([("web", "cart"), ("cart", "db", EdgeKind.READS), ("web", "auth", DEPENDS_ON)])
    deps = idx.dependencies("web")
    assert radius(deps.nodes) == [
        ("web", 0, ("web",)),
        ("auth", 1, ("web", "auth")),
        ("cart", 1, ("web", "cart")),
        ("db", 2, ("web", "cart", "db")),
    ]
    assert idx.dependencies(["db", "auth"]).count == 2
    assert idx.dependencies("web", depth=1, kinds={CALLS}).distances == {"web": 0, "cart": 1}


def entry(node_id: str) -> NodeFact:
    return NodeFact(node_id, NodeKind.SERVICE, P, tags=("internet-facing",))


def test_reach_finds_the_nearest_entry_point_and_its_shortest_path() -> None:
    idx = index(
        [
            ("lb", "web"),
            ("web", "cart"),
            ("cart", "db", EdgeKind.WRITES),
            ("edge", "gateway"),
            ("gateway", "cart"),
            ("web", "api:pay", EdgeKind.CONSUMES_API),
            ("pay", "api:pay", EdgeKind.PROVIDES_API),
        ],
        [entry("lb"), entry("edge")],
    )
    reach = idx.reach("db")
    assert (reach.reachable, reach.entry_point, reach.path) == (
        True,
        "edge",
        ("edge", "gateway", "cart", "db"),
    )  # lb and edge tie at 3 hops: id order
    # an api's provider is reached through the api
    assert idx.reach("pay").path == ("lb", "web", "api:pay", "pay")
    # an entry point reaches itself
    assert idx.reach("lb").as_dict() == {
        "node": "lb",
        "reachable": True,
        "entry_point": "lb",
        "path": ["lb"],
    }
    # nothing flows into an entry point from elsewhere
    assert idx.reach("gateway").path == ("edge", "gateway")


def test_reach_without_an_entry_point_or_for_an_unknown_node() -> None:
    idx = index([("a", "b"), ("b", "a"), ("c", "a")], [entry("x")])
    reach = idx.reach("a")
    assert (reach.known, reach.reachable, reach.entry_point, reach.path) == (True, False, None, ())
    unknown = idx.reach("nope")
    assert (unknown.known, unknown.reachable) == (False, False)
    # owned_by does not carry requests
    owned = index([("lb", "team:t", EdgeKind.OWNED_BY)], [entry("lb")])
    assert owned.reach("team:t").reachable is False


def test_a_hub_with_more_than_large_radius_dependents_takes_the_numpy_walk() -> None:
    callers = [f"c{i:05d}" for i in range(LARGE_RADIUS + 50)]
    edges: list[tuple[str, str] | tuple[str, str, EdgeKind]] = [(c, "hub") for c in callers]
    edges += [("hub", "base"), ("z-top", "c00007")]
    idx = index(edges, [NodeFact("base", NodeKind.DATASTORE, P, owner="team:base")])
    assert idx._impact.large[idx.ids.index("base")]  # the estimate sends it to numpy
    blast = idx.blast(["base"])
    assert blast.count == len(callers) + 3
    assert blast.distances["z-top"] == 3
    assert blast.nodes[-1].path == ("base", "hub", "c00007", "z-top")
    assert blast.owners == ("team:base",)
    assert idx.blast(["base"], depth=1).count == 2
    small = idx.blast(["c00007"])
    assert small.distances == {"c00007": 0, "z-top": 1}


# ---- the engines agree with a reference walk -----------------------------------------


def reference(
    n: int, edges: list[tuple[int, int, int]], start: list[int], mask: int | None
) -> dict[int, int]:
    out: dict[int, list[int]] = {i: [] for i in range(n)}
    for u, v, bit in edges:
        if mask is None or bit & mask:
            out[u].append(v)
    distance = dict.fromkeys(start, 0)
    queue = deque(start)
    while queue:
        u = queue.popleft()
        for v in out[u]:
            if v not in distance:
                distance[v] = distance[u] + 1
                queue.append(v)
    return distance


def as_distances(layers: Sequence[Layer] | None) -> dict[int, int]:
    assert layers is not None
    return {int(v): d for d, layer in enumerate(layers) for v in layer}


graphs = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(0, 1)), max_size=120
        ),
        st.lists(st.integers(0, n - 1), min_size=1, max_size=3),
    )
)


@settings(max_examples=150, deadline=None)
@given(graphs, st.sampled_from([None, 1, 2, 3]))
def test_rustworkx_numpy_and_python_walks_give_the_reference_distances(
    graph: tuple[int, list[tuple[int, int, int]], list[int]], mask: int | None
) -> None:
    n, raw, start = graph
    edges = [(u, v, 1 << k) for u, v, k in raw]
    src = np.array([u for u, _, _ in edges], dtype=np.int64)
    dst = np.array([v for _, v, _ in edges], dtype=np.int64)
    codes = np.array([k for _, _, k in raw], dtype=np.int64)
    way = Way(n, src, dst, codes, [CALLS, DEPENDS_ON], [])  # codes 0, 1 are the first two kinds
    assert list(EdgeKind)[:2] == [DEPENDS_ON, CALLS]
    expected = reference(n, edges, start, mask)
    assert as_distances(walk_numpy(way.out, n, start, None, mask, None)) == expected
    python = walk_python(way.out, start, None, mask, None)
    if python is not None:  # None only past the edge budget, far above these graphs
        assert as_distances(python) == expected
    assert as_distances(way.layers(start, None, mask)) == expected
    limited = {v: d for v, d in expected.items() if d <= 1}
    assert as_distances(way.layers(start, 1, mask)) == limited
    assert as_distances(walk_numpy(way.out, n, start, 1, mask, None)) == limited


def test_the_python_walk_hands_over_to_numpy_past_its_edge_budget() -> None:
    n = 6_000
    src = np.arange(1, n, dtype=np.int64)
    dst = np.zeros(n - 1, dtype=np.int64)
    codes = np.zeros(n - 1, dtype=np.int64)
    way = Way(n, dst, src, codes, [DEPENDS_ON], [])  # 0 -> every other node
    assert walk_python(way.out, [0], None, None, None) is None
    layers = way.layers([0], None, 1)  # a filtered walk: Python first, then numpy
    assert isinstance(layers[1], np.ndarray)
    assert len(layers[1]) == n - 1


def test_rollup_unions_agree_in_python_and_numpy() -> None:
    tags = [("t1",), (), ("t2", "t1"), ()] * 50
    owners = [("o1",), ("o2", "o3"), (), ("o4",)] * 50
    rollup = Rollup(tags, owners)
    few = [[0, 1], [2]]
    assert rollup.union(few) == (("t1", "t2"), ("o1", "o2", "o3"))
    many = [list(range(0, 200, 2)), list(range(1, 200, 2))]
    assert sum(map(len, many)) > ROLLUP_IN_PYTHON
    expected = (("t1", "t2"), ("o1", "o2", "o3", "o4"))
    assert rollup.union(many) == expected
    assert rollup.union([np.arange(200, dtype=np.int64)]) == expected
    assert rollup.union([list(range(3, 200, 4))]) == ((), ("o4",))
    assert rollup.union([]) == ((), ())


def test_radius_estimates_are_within_a_small_factor_on_a_chain() -> None:
    n = 3_000  # i -> i + 1: node i reaches n - i nodes
    way = Way(
        n,
        np.arange(n - 1, dtype=np.int64),
        np.arange(1, n, dtype=np.int64),
        np.zeros(n - 1, dtype=np.int64),
        [DEPENDS_ON],
        [],
    )
    estimate = estimate_radii(way.out, n)
    for i in (0, 1_000, 2_000, 2_900):
        assert (n - i) / 4 <= estimate[i] <= (n - i) * 4


def test_online_boutique_blast_radius_and_reachability_from_its_manifests() -> None:
    manifests = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    manifests = manifests / "online-boutique" / "kubernetes-manifests.yaml"
    results = registry.run(registry.plan([manifests]), "k8s")
    idx = GraphIndex(merge(results))
    blast = idx.blast(["cartservice"])
    assert radius(blast.nodes) == [
        ("cartservice", 0, ("cartservice",)),
        ("checkoutservice", 1, ("cartservice", "checkoutservice")),
        ("frontend", 1, ("cartservice", "frontend")),
        ("loadgenerator", 2, ("cartservice", "frontend", "loadgenerator")),
    ]
    assert "internet-facing" in blast.tags  # frontend, behind the LoadBalancer
    reach = idx.reach("cartservice")
    assert (reach.entry_point, reach.path) == ("frontend", ("frontend", "cartservice"))


def test_an_empty_graph_answers_every_query() -> None:
    idx = GraphIndex(merge([]))
    blast = idx.blast(["x"])
    assert (blast.count, blast.unknown, blast.nodes) == (0, ("x",), ())
    assert idx.dependencies("x").count == 0
    assert idx.reach("x").known is False
    assert idx.node_count == 0
