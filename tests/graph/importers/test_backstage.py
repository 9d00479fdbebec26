"""Backstage importer: the OpenTelemetry demo catalog, and synthetic bad or odd catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest

from placet.graph.errors import GraphInputError
from placet.graph.importers import backstage
from placet.graph.model import Direction, EdgeKind, ImportResult, NodeFact, NodeKind

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
CATALOG = DATA / "otel-demo-backstage"
ROOT = CATALOG / "backstage.yaml"


def _nodes(result: ImportResult) -> dict[str, NodeFact]:
    return {n.id: n for n in result.nodes}


def _targets(result: ImportResult, source: str, kind: EdgeKind) -> dict[str, int | None]:
    return {
        e.target: e.provenance.line for e in result.edges if e.source == source and e.kind is kind
    }


@pytest.fixture(scope="module")
def otel() -> ImportResult:
    return backstage.parse([ROOT], "otel-backstage")


def test_location_root_imports_every_target(otel: ImportResult) -> None:
    assert len(otel.files) == 25  # the root Location and its 24 targets
    assert str(CATALOG / "./src/checkoutservice/backstage.yaml") in otel.files
    nodes = _nodes(otel)
    assert len(nodes) == 24  # 19 Components, 3 Resources, 1 API, 1 Group
    assert otel.warnings == ()
    kinds = {n.kind for n in nodes.values()}
    assert kinds == {NodeKind.SERVICE, NodeKind.DATASTORE, NodeKind.API, NodeKind.TEAM}


def test_components_with_provenance(otel: ImportResult) -> None:
    checkout = _nodes(otel)["checkoutservice"]
    assert checkout.kind is NodeKind.SERVICE
    assert checkout.provenance.importer == "backstage"
    assert checkout.provenance.source == "otel-backstage"
    assert checkout.provenance.file.endswith("src/checkoutservice/backstage.yaml")
    assert checkout.provenance.line == 2  # the file starts with a blank line
    assert checkout.attributes["type"] == "service"
    assert checkout.attributes["lifecycle"] == "production"
    annotations = checkout.attributes["annotations"]
    assert annotations["github.com/project-slug"] == "jmichalak9/opentelemetry-demo"
    assert "system:opentelemetry-demo" in checkout.tags


def test_checkout_depends_on_edges_and_lines(otel: ImportResult) -> None:
    assert _targets(otel, "checkoutservice", EdgeKind.DEPENDS_ON) == {
        "cartservice": 16,
        "currencyservice": 17,
        "emailservice": 18,
        "paymentservice": 19,
        "productcatalogservice": 20,
        "shippingservice": 21,
        "kafka": 22,
    }
    assert _targets(otel, "frontendproxy", EdgeKind.DEPENDS_ON) == {
        "frontend": 16,
        "featureflagservice": 17,
    }
    assert _targets(otel, "currencyservice", EdgeKind.DEPENDS_ON) == {}


def test_api_provided_and_consumed(otel: ImportResult) -> None:
    api = _nodes(otel)["api:pb"]
    assert api.kind is NodeKind.API
    assert api.attributes["type"] == "grpc"
    assert api.owner == "user:guest"
    assert _targets(otel, "cartservice", EdgeKind.PROVIDES_API) == {"api:pb": 18}
    assert _targets(otel, "checkoutservice", EdgeKind.CONSUMES_API) == {"api:pb": 23}


def test_resources_are_datastores_by_spec_type(otel: ImportResult) -> None:
    nodes = _nodes(otel)
    for name in ("ffspostgres", "redis", "kafka"):  # the catalog types all three "database"
        assert nodes[name].kind is NodeKind.DATASTORE
        assert nodes[name].attributes["backstage_kind"] == "Resource"
        assert nodes[name].attributes["type"] == "database"
    assert _targets(otel, "featureflagservice", EdgeKind.DEPENDS_ON) == {"ffspostgres": 16}


def test_group_user_and_owners(otel: ImportResult) -> None:
    devs = _nodes(otel)["team:devs"]
    assert devs.kind is NodeKind.TEAM
    assert devs.provenance.line == 11
    assert devs.attributes["members"] == ["user:guest"]  # from User guest's memberOf
    assert devs.attributes["group_type"] == "team"
    assert devs.attributes["children"] == []
    assert "user:guest" not in _nodes(otel)  # users are not nodes
    owned = [e for e in otel.edges if e.kind is EdgeKind.OWNED_BY]
    assert {e.target for e in owned} == {"user:guest"}
    assert len(owned) == 23  # every Component, Resource and the API
    assert _targets(otel, "checkoutservice", EdgeKind.OWNED_BY) == {"user:guest": 13}
    assert _nodes(otel)["frontend"].owner == "user:guest"


def test_coverage_only_for_declared_depends_on(otel: ImportResult) -> None:
    covered = {c.node for c in otel.coverage}
    assert "checkoutservice" in covered
    assert "currencyservice" not in covered  # no dependsOn key: no claim
    assert all(
        c.kind is EdgeKind.DEPENDS_ON and c.direction is Direction.OUTGOING for c in otel.coverage
    )
    assert len(covered) == 12


def test_directory_import_reads_each_file_once(otel: ImportResult) -> None:
    files = sorted(p for p in CATALOG.rglob("*.yaml"))
    result = backstage.parse(files, "otel-backstage")
    assert len(result.files) == 25
    assert _nodes(result).keys() == _nodes(otel).keys()
    assert len(result.edges) == len(otel.edges)


def test_detect_by_content() -> None:
    assert backstage.detect(ROOT, ROOT.read_text())
    manifests = DATA / "online-boutique" / "kubernetes-manifests.yaml"
    assert not backstage.detect(manifests, manifests.read_text())
    assert backstage.detect(Path("x.yaml"), "kind: API\napiVersion: backstage.io/v1beta1\n")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


HEAD = "apiVersion: backstage.io/v1alpha1\n"


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``text`` containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = _write(tmp_path, "c.yaml", HEAD + "kind: Component\nmetadata:\n  name: [oops\n")
    with pytest.raises(GraphInputError) as caught:
        backstage.parse([bad], "t")
    assert caught.value.file == str(bad)
    assert caught.value.line == 5
    assert "malformed YAML" in str(caught.value)


def test_malformed_location_target_names_the_target(tmp_path: Path) -> None:
    _write(tmp_path, "sub/bad.yaml", HEAD + "kind: Component\nmetadata: {name: x\n")
    root = _write(
        tmp_path,
        "root.yaml",
        HEAD + "kind: Location\nmetadata: {name: r}\nspec:\n  targets: [./sub/bad.yaml]\n",
    )
    with pytest.raises(GraphInputError) as caught:
        backstage.parse([root], "t")
    assert caught.value.file == str(tmp_path / "./sub/bad.yaml")
    assert caught.value.line == 4


def test_unknown_kind_is_external_with_warning(tmp_path: Path) -> None:
    file = _write(tmp_path, "w.yaml", "\n" + HEAD + "kind: Widget\nmetadata:\n  name: Gizmo\n")
    result = backstage.parse([file], "t")
    gizmo = _nodes(result)["gizmo"]
    assert gizmo.kind is NodeKind.EXTERNAL
    assert gizmo.provenance.line == 2
    assert [(w.line, w.message) for w in result.warnings] == [
        (2, "unknown kind Widget (Gizmo); kept as external")
    ]


def test_template_ignored_with_warning(tmp_path: Path) -> None:
    text = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t1}\n"
    result = backstage.parse([_write(tmp_path, "t.yaml", text)], "t")
    assert result.nodes == ()
    assert "Template t1 ignored" in result.warnings[0].message


def test_location_cycle_is_guarded(tmp_path: Path) -> None:
    a = _write(
        tmp_path,
        "a.yaml",
        HEAD + "kind: Location\nmetadata: {name: a}\nspec:\n  target: ./b.yaml\n",
    )
    _write(
        tmp_path,
        "b.yaml",
        HEAD + "kind: Location\nmetadata: {name: b}\n"
        "spec:\n  targets:\n    - ./a.yaml\n---\n"
        + HEAD
        + "kind: Component\nmetadata: {name: cart}\nspec: {type: service}\n",
    )
    result = backstage.parse([a], "t")
    assert [n.id for n in result.nodes] == ["cart"]
    assert len(result.files) == 2
    (warning,) = result.warnings
    assert warning.file == str(tmp_path / "./b.yaml")
    assert warning.line == 6
    assert "Location cycle" in warning.message


def test_missing_location_target_is_a_warning(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        "root.yaml",
        HEAD + "kind: Location\nmetadata: {name: r}\n"
        "spec:\n  targets:\n    - ./here.yaml\n    - ./gone.yaml\n"
        "    - https://example.com/catalog.yaml\n",
    )
    _write(tmp_path, "here.yaml", HEAD + "kind: Component\nmetadata: {name: here}\n")
    result = backstage.parse([root], "t")
    assert [n.id for n in result.nodes] == ["here"]
    messages = {w.line: w.message for w in result.warnings}
    assert "gone.yaml not found" in messages[7]
    assert "remote Location target" in messages[8]


def test_every_ref_form_and_default_kinds(tmp_path: Path) -> None:
    text = (
        HEAD + "kind: Component\nmetadata: {name: web, namespace: shop}\nspec:\n"
        "  type: website\n  owner: Team-A\n  dependsOn:\n    - cart\n"
        "    - component:cart\n    - Component:shop/Cart\n    - resource:shop/db\n"
        "  consumesApis: [api:cart-api, cart-api]\n---\n"
        + HEAD
        + "kind: Component\nmetadata: {name: cart, namespace: shop}\n"
        "spec: {type: service, owner: group:default/team-a, providesApis: [cart-api]}\n---\n"
        + HEAD
        + "kind: API\nmetadata: {name: cart-api, namespace: shop}\nspec: {type: grpc}\n"
        "---\n" + HEAD + "kind: Resource\nmetadata: {name: db, namespace: shop}\n"
        "spec: {type: cache}\n---\n"
        + HEAD
        + "kind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n"
    )
    result = backstage.parse([_write(tmp_path, "c.yaml", text)], "t")
    nodes = _nodes(result)
    assert nodes["web"].attributes["namespace"] == "shop"
    assert nodes["db"].kind is NodeKind.DATASTORE
    deps = [e.target for e in result.edges if e.source == "web" and e.kind is EdgeKind.DEPENDS_ON]
    assert deps == ["cart", "db"]  # three spellings of one ref: one edge, the first line
    assert _targets(result, "web", EdgeKind.DEPENDS_ON)["cart"] == _line(text, "- cart")
    assert _targets(result, "web", EdgeKind.CONSUMES_API) == {
        "api:cart-api": _line(text, "consumesApis")
    }
    assert _targets(result, "cart", EdgeKind.PROVIDES_API) == {
        "api:cart-api": _line(text, "providesApis")
    }
    # owner Team-A defaults to kind group in the entity's namespace (shop): not in catalog
    assert nodes["web"].owner == "team:team-a"
    assert nodes["cart"].owner == "team:team-a"
    assert any("group:shop/team-a is not in the catalog" in w.message for w in result.warnings)


def test_dangling_references_become_placeholders(tmp_path: Path) -> None:
    text = (
        HEAD + "kind: Component\nmetadata: {name: checkout}\nspec:\n  owner: payments\n"
        "  dependsOn: [component:default/ghost, resource:bucket]\n  consumesApis: [pay-api]\n"
    )
    result = backstage.parse([_write(tmp_path, "c.yaml", text)], "t")
    nodes = _nodes(result)
    assert nodes["ghost"].kind is NodeKind.EXTERNAL
    assert nodes["bucket"].kind is NodeKind.EXTERNAL
    assert nodes["api:pay-api"].kind is NodeKind.API
    assert nodes["team:payments"].kind is NodeKind.TEAM
    assert nodes["ghost"].attributes["declared"] is False
    owner, deps, apis = (_line(text, k) for k in ("owner:", "dependsOn", "consumesApis"))
    assert _targets(result, "checkout", EdgeKind.OWNED_BY) == {"team:payments": owner}
    assert _targets(result, "checkout", EdgeKind.DEPENDS_ON) == {"ghost": deps, "bucket": deps}
    lines = sorted(w.line or 0 for w in result.warnings)
    assert lines == [owner, deps, deps, apis]
    assert any("kept as external node ghost" in w.message for w in result.warnings)


def test_group_hierarchy_members_and_team_owner(tmp_path: Path) -> None:
    text = (
        HEAD + "kind: Group\nmetadata: {name: payments}\n"
        "spec: {type: team, parent: engineering, children: [group:card-team], members: [bob]}\n"
        "---\n" + HEAD + "kind: Group\nmetadata: {name: engineering}\n"
        "spec: {type: department, children: [payments]}\n---\n"
        + HEAD
        + "kind: Group\nmetadata: {name: card-team}\nspec: {children: []}\n---\n"
        + HEAD
        + "kind: User\nmetadata: {name: alice}\nspec: {memberOf: [payments, nowhere]}\n"
        "---\n" + HEAD + "kind: Component\nmetadata: {name: checkout}\n"
        "spec: {type: service, owner: payments}\n"
    )
    result = backstage.parse([_write(tmp_path, "org.yaml", text)], "t")
    payments = _nodes(result)["team:payments"]
    assert payments.attributes["parent"] == "team:engineering"
    assert payments.attributes["children"] == ["team:card-team"]
    assert payments.attributes["members"] == ["user:alice", "user:bob"]
    assert _nodes(result)["team:engineering"].attributes["children"] == ["team:payments"]
    assert _nodes(result)["checkout"].owner == "team:payments"
    owner_line = _line(text, "owner: payments")
    assert _targets(result, "checkout", EdgeKind.OWNED_BY) == {"team:payments": owner_line}
    (warning,) = result.warnings
    assert "memberOf 'nowhere'" in warning.message
    assert warning.line == _line(text, "nowhere")


def test_annotations_tags_tier_source_paths_and_domain(tmp_path: Path) -> None:
    text = (
        HEAD
        + "kind: Domain\nmetadata: {name: commerce}\n---\n"
        + HEAD
        + "kind: System\nmetadata: {name: shop}\nspec: {owner: x, domain: commerce}\n"
        "---\n" + HEAD + "kind: Component\nmetadata:\n  name: checkout\n"
        "  tags: [java, grpc]\n  annotations:\n    placet.dev/tier: '1'\n"
        "    placet.dev/tags: 'revenue-path, regulated-data:pci'\n"
        "    backstage.io/source-location: url:https://github.com/o/r/tree/main/src/checkout/\n"
        "spec: {type: service, system: shop}\n---\n"
        + HEAD
        + "kind: Component\nmetadata:\n  name: cart\n  annotations:\n"
        "    backstage.io/source-location: dir:./services/cart\nspec: {type: service}\n---\n"
        + HEAD
        + "kind: Resource\nmetadata: {name: orders}\nspec: {type: kafka-topic}\n---\n"
        + HEAD
        + "kind: Resource\nmetadata: {name: vpc}\nspec: {type: network}\n---\n"
        + HEAD
        + "kind: Component\nmetadata: {name: ledger}\nspec: {type: database}\n"
    )
    result = backstage.parse([_write(tmp_path, "c.yaml", text)], "t")
    nodes = _nodes(result)
    checkout = nodes["checkout"]
    assert checkout.tier == "1"
    assert checkout.tags == (
        "java",
        "grpc",
        "system:shop",
        "domain:commerce",
        "revenue-path",
        "regulated-data:pci",
    )
    assert checkout.source_paths == ("src/checkout/",)
    assert nodes["cart"].source_paths == ("services/cart/",)
    assert nodes["orders"].kind is NodeKind.QUEUE
    assert nodes["vpc"].kind is NodeKind.EXTERNAL
    assert nodes["vpc"].attributes["type"] == "network"
    assert nodes["ledger"].kind is NodeKind.DATASTORE
    assert "shop" not in nodes and "commerce" not in nodes  # systems/domains are tags
    assert result.warnings == ()


def test_dependency_of_empty_depends_on_and_duplicates(tmp_path: Path) -> None:
    text = (
        HEAD + "kind: Component\nmetadata: {name: lib}\n"
        "spec: {type: library, dependsOn: [], dependencyOf: [component:app]}\n---\n"
        + HEAD
        + "kind: Component\nmetadata: {name: app}\nspec: {type: service}\n---\n"
        + HEAD
        + "kind: Component\nmetadata: {name: APP}\nspec: {type: service}\n"
    )
    result = backstage.parse([_write(tmp_path, "c.yaml", text)], "t")
    assert _targets(result, "app", EdgeKind.DEPENDS_ON) == {"lib": _line(text, "dependencyOf")}
    assert _targets(result, "lib", EdgeKind.DEPENDS_ON) == {}
    assert [c.node for c in result.coverage] == ["lib"]  # an explicit empty list is a claim
    (warning,) = result.warnings
    assert warning.line == _line(text, "apiVersion", occurrence=3)
    assert "already defined" in warning.message
