"""Kubernetes importer: Online Boutique's manifests and, separately, its NetworkPolicies."""

from __future__ import annotations

from pathlib import Path

import pytest

from placet.graph.errors import GraphInputError
from placet.graph.importers import kubernetes
from placet.graph.importers.kubernetes_calls import expand
from placet.graph.importers.kubernetes_netpol import selector_matches
from placet.graph.model import (
    INTERNET_FACING,
    Direction,
    EdgeFact,
    EdgeKind,
    ImportResult,
    NodeFact,
    NodeKind,
)

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
BOUTIQUE = DATA / "online-boutique"
MANIFESTS = BOUTIQUE / "kubernetes-manifests.yaml"
POLICIES = BOUTIQUE / "network-policies"
LINES = MANIFESTS.read_text(encoding="utf-8").splitlines()

WORKLOADS = {
    "frontend", "adservice", "currencyservice", "cartservice", "redis-cart", "loadgenerator",
    "recommendationservice", "checkoutservice", "emailservice", "paymentservice",
    "shippingservice", "productcatalogservice",
}  # fmt: skip
ENV_CALLS = {
    ("frontend", "productcatalogservice"), ("frontend", "currencyservice"),
    ("frontend", "cartservice"), ("frontend", "recommendationservice"),
    ("frontend", "shippingservice"), ("frontend", "checkoutservice"), ("frontend", "adservice"),
    ("frontend", "shoppingassistantservice"), ("cartservice", "redis-cart"),
    ("loadgenerator", "frontend"), ("recommendationservice", "productcatalogservice"),
    ("checkoutservice", "productcatalogservice"), ("checkoutservice", "shippingservice"),
    ("checkoutservice", "paymentservice"), ("checkoutservice", "emailservice"),
    ("checkoutservice", "currencyservice"), ("checkoutservice", "cartservice"),
}  # fmt: skip
POLICY_CALLS = {
    ("frontend", "adservice"), ("frontend", "cartservice"), ("checkoutservice", "cartservice"),
    ("frontend", "checkoutservice"), ("frontend", "currencyservice"),
    ("checkoutservice", "currencyservice"), ("checkoutservice", "emailservice"),
    ("checkoutservice", "paymentservice"), ("frontend", "productcatalogservice"),
    ("checkoutservice", "productcatalogservice"),
    ("recommendationservice", "productcatalogservice"), ("frontend", "recommendationservice"),
    ("cartservice", "redis-cart"), ("frontend", "shippingservice"),
    ("checkoutservice", "shippingservice"),
}  # fmt: skip


def _line_after(marker: str, offset: int = 1) -> int:
    """The 1-based line ``offset`` lines below the manifest line equal to ``marker``."""
    return [line.strip() for line in LINES].index(marker) + 1 + offset


def _nodes(result: ImportResult) -> dict[str, NodeFact]:
    return {n.id: n for n in result.nodes}


def _calls(result: ImportResult, via: str | None = None) -> dict[tuple[str, str], EdgeFact]:
    return {
        (e.source, e.target): e
        for e in result.edges
        if e.kind is EdgeKind.CALLS and (via is None or e.attributes.get("via") == via)
    }


@pytest.fixture(scope="module")
def boutique() -> ImportResult:
    return kubernetes.parse([MANIFESTS], "boutique")


@pytest.fixture(scope="module")
def policies() -> ImportResult:
    return kubernetes.parse(sorted(POLICIES.iterdir()), "boutique-netpol")


def test_twelve_deployments_are_the_nodes(boutique: ImportResult) -> None:
    nodes = _nodes(boutique)
    workloads = {i for i, n in nodes.items() if n.attributes.get("k8s_kind") == "Deployment"}
    assert workloads == WORKLOADS
    assert set(nodes) == WORKLOADS | {"shoppingassistantservice"}
    assert nodes["redis-cart"].kind is NodeKind.DATASTORE  # image redis:alpine
    assert {nodes[w].kind for w in WORKLOADS - {"redis-cart"}} == {NodeKind.SERVICE}
    assert nodes["frontend"].provenance.line == 21
    assert LINES[20:24] == [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        "  name: frontend",
    ]
    assert nodes["cartservice"].provenance.file == str(MANIFESTS)
    assert nodes["cartservice"].provenance.importer == "kubernetes"
    assert nodes["cartservice"].provenance.source == "boutique"


def test_services_resolve_to_their_workloads(boutique: ImportResult) -> None:
    nodes = _nodes(boutique)
    assert "frontend-external" not in nodes
    assert nodes["frontend"].attributes["services"] == ["frontend", "frontend-external"]
    assert nodes["loadgenerator"].attributes["services"] == []  # no Service fronts it
    assert nodes["emailservice"].attributes["services"] == ["emailservice"]


def test_only_the_load_balancer_is_internet_facing(boutique: ImportResult) -> None:
    facing = {n.id for n in boutique.nodes if INTERNET_FACING in n.tags}
    assert facing == {"frontend"}
    frontend = _nodes(boutique)["frontend"]
    assert frontend.attributes["exposed_by"] == ["Service/frontend-external (LoadBalancer)"]


def test_env_addresses_are_the_call_edges(boutique: ImportResult) -> None:
    calls = _calls(boutique)
    assert set(calls) == ENV_CALLS
    assert {e.attributes["via"] for e in calls.values()} == {"env"}
    cart = calls[("frontend", "cartservice")]
    assert cart.attributes["refs"] == ["server env CART_SERVICE_ADDR"]
    assert cart.attributes["ports"] == [7070]
    assert cart.provenance.line == _line_after("- name: CART_SERVICE_ADDR")
    assert LINES[cart.provenance.line - 1].strip() == 'value: "cartservice:7070"'
    payment = calls[("checkoutservice", "paymentservice")]
    assert payment.attributes["ports"] == [50051]
    assert calls[("checkoutservice", "emailservice")].attributes["ports"] == [5000]
    # the init container and the main container both name frontend: one edge, two refs
    load = calls[("loadgenerator", "frontend")]
    assert load.attributes["refs"] == ["frontend-check env FRONTEND_ADDR", "main env FRONTEND_ADDR"]
    # the init container's shell script mentions "frontend" in prose: not a reference
    assert not any("command" in r for e in calls.values() for r in e.attributes["refs"])


def test_the_dangling_address_is_external_and_warned(boutique: ImportResult) -> None:
    node = _nodes(boutique)["shoppingassistantservice"]
    assert node.kind is NodeKind.EXTERNAL
    line = _line_after("- name: SHOPPING_ASSISTANT_SERVICE_ADDR")
    assert node.provenance.line == line == 90
    [warning] = boutique.warnings
    assert (warning.file, warning.line) == (str(MANIFESTS), 90)
    assert "SHOPPING_ASSISTANT_SERVICE_ADDR" in warning.message
    assert "'shoppingassistantservice:80'" in warning.message
    edge = _calls(boutique)[("frontend", "shoppingassistantservice")]
    assert edge.attributes["ports"] == [80]


def test_each_workload_covers_its_outgoing_calls(boutique: ImportResult) -> None:
    claims = {c.node: c for c in boutique.coverage}
    assert set(claims) == WORKLOADS
    assert {(c.kind, c.direction) for c in claims.values()} == {
        (EdgeKind.CALLS, Direction.OUTGOING)
    }
    assert claims["frontend"].provenance.line == 21


def test_no_namespace_means_no_environment(boutique: ImportResult) -> None:
    assert not [e for e in boutique.edges if e.kind is EdgeKind.PART_OF]
    assert {n.attributes.get("namespace") for n in boutique.nodes if n.attributes} == {"default"}


def test_network_policies_alone(policies: ImportResult) -> None:
    assert set(_calls(policies, "networkpolicy")) == POLICY_CALLS
    assert set(_calls(policies)) == POLICY_CALLS
    assert policies.warnings == ()
    assert str(POLICIES / "kustomization.yaml") not in policies.files
    assert len(policies.files) == 13
    nodes = _nodes(policies)
    assert set(nodes) == WORKLOADS  # inferred from the app= selectors
    assert nodes["redis-cart"].kind is NodeKind.DATASTORE
    assert nodes["adservice"].attributes["inferred_from"] == "networkpolicy"
    edge = _calls(policies)[("checkoutservice", "paymentservice")]
    assert edge.provenance.file == str(POLICIES / "network-policy-paymentservice.yaml")
    assert edge.provenance.line == 28
    assert edge.attributes == {
        "via": "networkpolicy",
        "policies": ["paymentservice"],
        "ports": ["50051"],
    }


def test_policy_coverage_is_incoming_except_where_ingress_is_open(policies: ImportResult) -> None:
    claims = {c.node: c for c in policies.coverage}
    assert {c.direction for c in claims.values()} == {Direction.INCOMING}
    # frontend's policy allows ingress from anywhere ({}), so its callers are not listed
    assert set(claims) == WORKLOADS - {"frontend"}
    # loadgenerator is selected only by deny-all: nobody may call it, and that is complete
    assert claims["loadgenerator"].provenance.file.endswith("network-policy-deny-all.yaml")
    assert claims["cartservice"].provenance.file.endswith("network-policy-cartservice.yaml")


def test_manifests_and_policies_disagree_on_two_edges(
    boutique: ImportResult, policies: ImportResult
) -> None:
    from_env, from_policy = set(_calls(boutique)), set(_calls(policies))
    # loadgenerator -> frontend: frontend's policy admits everyone, so it names no caller;
    # frontend -> shoppingassistantservice: a Service not deployed, with no policy at all.
    assert from_env - from_policy == {
        ("loadgenerator", "frontend"),
        ("frontend", "shoppingassistantservice"),
    }
    assert from_policy - from_env == set()
    covered = {c.node for c in policies.coverage}
    for target in covered:  # where a policy lists every caller, the env agrees exactly
        assert {s for s, t in from_env if t == target} == {s for s, t in from_policy if t == target}


def test_one_run_keeps_both_sources_apart() -> None:
    both = kubernetes.parse([MANIFESTS, *sorted(POLICIES.iterdir())], "boutique-all")
    env, policy = _calls(both, "env"), _calls(both, "networkpolicy")
    assert set(env) == ENV_CALLS and set(policy) == POLICY_CALLS
    assert {e.provenance.file for e in env.values()} == {str(MANIFESTS)}
    assert str(MANIFESTS) not in {e.provenance.file for e in policy.values()}
    assert not [n for n in both.nodes if n.attributes.get("inferred_from")]  # selectors matched
    directions = {(c.node, c.direction) for c in both.coverage}
    assert ("cartservice", Direction.OUTGOING) in directions
    assert ("cartservice", Direction.INCOMING) in directions


SHOP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: cart, namespace: shop}
  spec:
    template:
      metadata: {labels: {app: cart, tier: backend}}
      spec:
        containers:
        - name: app
          image: ghcr.io/acme/cart:1.2
          envFrom:
          - configMapRef: {name: cart-config}
          env:
          - {name: DB_HOST, value: orders-db}
          - {name: DB_URL, value: "postgres://app:secret@$(DB_HOST).shop.svc.cluster.local:5432/x"}
          - {name: LOG_LEVEL, value: info}
          - {name: WHO, value: cart}
          - name: TOKEN
            valueFrom: {secretKeyRef: {name: cart-secrets, key: token}}
          args: ["--payments=https://api.stripe.com/v1", "--mode=fast"]
- apiVersion: v1
  kind: Service
  metadata: {name: cart-svc, namespace: shop}
  spec: {type: NodePort, selector: {app: cart}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: orders-postgres, namespace: shop}
spec:
  template:
    metadata: {labels: {app: orders-db}}
    spec:
      containers: [{name: db, image: registry.local/acme/pg-custom:16}]
---
apiVersion: v1
kind: Service
metadata: {name: orders-db, namespace: shop}
spec: {selector: {app: orders-db}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ghcr.io/acme/web:3
        env:
        - {name: CART, value: "http://cart-svc:8080/api"}
        - {name: LEGACY, value: "cart-svc.shop"}
        - {name: SEARCH_HOST, value: search}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cart-config, namespace: shop}
data:
  PAYMENTS_ADDR: "payments.billing.svc:9000"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: public, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web-svc, port: {number: 80}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec: {hosts: [web]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [orders-db]}]}
  ingress:
  - from:
    - podSelector: {matchLabels: {tier: backend}}
    - ipBlock: {cidr: 10.20.0.0/16}
"""


@pytest.fixture()
def shop(tmp_path: Path) -> ImportResult:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP, encoding="utf-8")
    return kubernetes.parse([path], "shop")


def test_namespaces_kinds_and_service_aliases(shop: ImportResult) -> None:
    result = shop
    nodes = _nodes(result)
    assert nodes["orders-postgres"].kind is NodeKind.DATASTORE  # a StatefulSet named so
    assert nodes["cart"].kind is NodeKind.SERVICE
    assert nodes["cart"].attributes["services"] == ["cart-svc"]
    assert nodes["environment:shop"].kind is NodeKind.ENVIRONMENT
    assert nodes["environment:shop"].provenance.line == 1  # the Namespace object
    part_of = {e.source for e in result.edges if e.kind is EdgeKind.PART_OF}
    assert part_of == {"cart", "orders-postgres", "web"}
    assert "cart-svc" not in nodes and "orders-db" not in nodes


def test_addresses_in_every_form(shop: ImportResult) -> None:
    result = shop
    calls = {k: e for k, e in _calls(result).items() if e.attributes["via"] != "networkpolicy"}
    calls.update(_calls(result, "env"))
    assert calls[("cart", "api.stripe.com")].attributes["via"] == "args"
    db = calls[("cart", "orders-postgres")]  # $(DB_HOST) expanded, then name.ns.svc.cluster.local
    assert db.attributes["refs"] == ["app env DB_HOST", "app env DB_URL"]
    assert db.attributes["ports"] == [5432]
    web = calls[("web", "cart")]  # URL and name.namespace both reach cart through cart-svc
    assert web.attributes["refs"] == ["web env CART", "web env LEGACY"]
    assert ("cart", "cart") not in calls  # WHO=cart names itself
    assert {t for s, t in calls if s == "cart"} == {"orders-postgres", "api.stripe.com", "payments"}
    nodes = _nodes(result)
    assert nodes["api.stripe.com"].kind is NodeKind.EXTERNAL
    assert nodes["payments"].kind is NodeKind.EXTERNAL  # payments.billing.svc: not in the run
    assert (
        calls[("cart", "payments")].provenance.line
        == SHOP.splitlines().index('  PAYMENTS_ADDR: "payments.billing.svc:9000"') + 1
    )
    assert calls[("web", "search")].attributes["refs"] == ["web env SEARCH_HOST"]
    messages = "\n".join(w.message for w in result.warnings)
    assert "names 'search'" in messages and "'https://api.stripe.com/v1'" in messages
    assert "LOG_LEVEL" not in messages and "--mode" not in messages


def test_secrets_and_missing_config_withhold_coverage(shop: ImportResult) -> None:
    result = shop
    outgoing = {c.node for c in result.coverage if c.direction is Direction.OUTGOING}
    assert outgoing == {"orders-postgres", "web"}  # cart reads a Secret


def test_exposure_unknown_kinds_and_open_policies(shop: ImportResult) -> None:
    result = shop
    nodes = _nodes(result)
    assert INTERNET_FACING in nodes["cart"].tags  # NodePort
    assert nodes["cart"].attributes["exposed_by"] == ["Service/cart-svc (NodePort)"]
    assert nodes["web-svc"].kind is NodeKind.EXTERNAL  # the Ingress backend is not defined
    assert INTERNET_FACING in nodes["web-svc"].tags
    assert nodes["virtualservice/web"].kind is NodeKind.EXTERNAL
    by_message = {w.message: w for w in result.warnings}
    unknown = next(w for m, w in by_message.items() if "unknown kind VirtualService" in m)
    assert unknown.line == SHOP.splitlines().index("kind: VirtualService")
    assert any("routes to Service 'web-svc'" in m for m in by_message)
    assert set(_calls(result, "networkpolicy")) == {("cart", "orders-postgres")}
    incoming = {c.node for c in result.coverage if c.direction is Direction.INCOMING}
    assert "orders-postgres" not in incoming
    assert any("ipBlock {'cidr': '10.20.0.0/16'}" in m for m in by_message)
    ingress_from = [
        n.attributes.get("ingress_from") for n in result.nodes if n.id == "orders-postgres"
    ]
    assert ["ipBlock {'cidr': '10.20.0.0/16'}"] in ingress_from


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n", encoding="utf-8")
    with pytest.raises(GraphInputError) as caught:
        kubernetes.parse([bad], "bad")
    assert caught.value.file == str(bad)
    assert caught.value.line == 5
    assert "malformed YAML" in str(caught.value)


def test_a_document_that_is_not_an_object_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "list.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n- 1\n- 2\n")
    with pytest.raises(GraphInputError) as caught:
        kubernetes.parse([bad], "bad")
    assert (caught.value.file, caught.value.line) == (str(bad), 5)


def test_objects_without_kind_are_warned_about(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nfoo: bar\n")
    result = kubernetes.parse([odd], "odd")
    assert [(w.line, "not a Kubernetes object" in w.message) for w in result.warnings] == [
        (5, True)
    ]
    assert {n.id for n in result.nodes} == {"a"}


def test_detect() -> None:
    assert kubernetes.detect(MANIFESTS, MANIFESTS.read_text())
    netpol = POLICIES / "network-policy-frontend.yaml"
    assert kubernetes.detect(netpol, netpol.read_text())
    kustomization = POLICIES / "kustomization.yaml"
    assert kubernetes.detect(kustomization, kustomization.read_text())  # claimed, then skipped
    compose = DATA / "otel-demo" / "compose.yaml"
    assert not kubernetes.detect(compose, compose.read_text())
    catalog = DATA / "otel-demo-backstage" / "backstage.yaml"
    assert not kubernetes.detect(catalog, catalog.read_text())
    workflow = BOUTIQUE / "github-workflows" / "ci-main.yaml"
    assert not kubernetes.detect(workflow, workflow.read_text())


def test_selectors_and_expansion() -> None:
    labels = {"app": "cart", "tier": "backend"}
    assert selector_matches({}, labels)
    assert not selector_matches(None, labels)
    assert selector_matches({"matchLabels": {"app": "cart"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "web"}}, labels)
    expressions = [
        ({"key": "tier", "operator": "In", "values": ["backend"]}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["backend"]}, False),
        ({"key": "zone", "operator": "DoesNotExist"}, True),
        ({"key": "zone", "operator": "Exists"}, False),
        ({"key": "app", "operator": "Bogus"}, False),
    ]
    for expression, expected in expressions:
        assert selector_matches({"matchExpressions": [expression]}, labels) is expected
    env = {"HOST": "cart", "PORT": "80"}
    assert expand("$(HOST):$(PORT)", env) == "cart:80"
    assert expand("$$(HOST) $(NOPE)", env) == "$(HOST) $(NOPE)"
