"""The graph service: imports as sources, versions, queries, and assessments in the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placet.domain.errors import InputError, NotFound
from placet.service.control_plane import ControlPlane
from tests.conftest import GRAPH, Tokens

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BOUTIQUE = DATA / "online-boutique" / "kubernetes-manifests.yaml"


def test_imports_make_versions_and_reimport_replaces_a_source(plane: ControlPlane) -> None:
    first = plane.graph.current()
    assert first is not None  # the fixture imported the tests' graph
    report = plane.graph.import_paths([BOUTIQUE], source="boutique")
    assert report["version"]["created"] and report["importers"] == ["kubernetes"]
    assert "frontend" in plane.graph.current().graph.nodes  # type: ignore[union-attr]
    again = plane.graph.import_paths([BOUTIQUE], source="boutique")
    assert not again["version"]["created"]  # same facts: same version
    assert again["version"]["id"] == report["version"]["id"]
    plane.graph.import_paths([GRAPH], source="boutique")  # the source now says other things
    current = plane.graph.current()
    assert current is not None and "frontend" not in current.graph.nodes
    assert len(plane.graph.versions()) == 3


def test_blast_and_reach_on_online_boutique(plane: ControlPlane) -> None:
    plane.graph.import_paths([BOUTIQUE], source="boutique")
    blast = plane.graph.blast(["cartservice"])
    affected = {n["id"]: n for n in blast["nodes"]}
    assert "frontend" in affected and "checkoutservice" in affected
    assert affected["frontend"]["path"][0] == "cartservice"
    reach = plane.graph.reach("cartservice")
    assert reach["reachable"] and reach["entry_point"] == "frontend"
    assert reach["path"][0] == "frontend" and reach["path"][-1] == "cartservice"
    with pytest.raises(NotFound):
        plane.graph.reach("no-such-node")
    with pytest.raises(InputError):
        plane.graph.blast(["cartservice"], depth=-1)


def test_the_assessment_is_evidence_and_feeds_policy(plane: ControlPlane, tokens: Tokens) -> None:
    plane.graph.import_paths([BOUTIQUE], source="boutique")
    agent = plane.principals.authenticate(tokens.agent)
    body = {
        "kind": "restart",
        "targets": ["cartservice"],
        "environment": "staging",
        "intent": "restart the cart",
        "parameters": {},
    }
    view, _ = plane.proposals.propose(agent, body)
    bundle = plane.ledger.export(view["id"])
    import base64

    statements = [json.loads(base64.b64decode(e["envelope"]["payload"])) for e in bundle["entries"]]
    assessment = next(
        s["predicate"] for s in statements if s["predicateType"].endswith("/assessment/v1")
    )
    current = plane.graph.current()
    assert current is not None
    assert assessment["graph_version"] == {"id": current.id, "digest": current.digest}
    assert assessment["unknown_targets"] == []
    assert assessment["blast_radius"]["count"] >= 2
    assert "cartservice" in assessment["internet_reachable"]
    blind, _ = plane.proposals.propose(agent, {**body, "targets": ["ghost"]})
    assert blind["state"] == "pending_approval"
    assert any("not in the System Graph" in r for r in blind["decision"]["reasons"])


def test_dependencies_go_forward(plane: ControlPlane) -> None:
    plane.graph.import_paths([BOUTIQUE], source="boutique")
    deps = plane.graph.dependencies("frontend")
    ids = {n["id"] for n in deps["nodes"]}
    assert {"cartservice", "productcatalogservice", "redis-cart"} <= ids
    near = plane.graph.dependencies("frontend", depth=1)
    assert "redis-cart" not in {n["id"] for n in near["nodes"]}  # two hops away
    with pytest.raises(NotFound):
        plane.graph.dependencies("ghost")


def test_changed_paths_map_to_nodes_and_codeowners(plane: ControlPlane, tmp_path: Path) -> None:
    overlay = tmp_path / "placet-graph.yaml"
    overlay.write_text(
        "placet-graph: v1\nnodes:\n"
        "  cartservice: {kind: service, owner: team:cart, source_paths: [src/cartservice/]}\n"
    )
    plane.graph.import_paths([overlay, DATA / "online-boutique" / "CODEOWNERS"], source="own")
    result = plane.graph.owners(["src/cartservice/src/CartStore.cs", "README.md"])
    cart, readme = result["paths"]
    assert cart["nodes"] == ["cartservice"]
    assert "team:cart" in cart["owners"]
    assert readme["nodes"] == []
    assert readme["owners"]  # CODEOWNERS still names who answers for it
    with pytest.raises(InputError):
        plane.graph.owners([])
