"""Kubernetes NetworkPolicy ingress rules as call edges: the second, independent view.

A policy's ``spec.podSelector`` picks the *target* pods; each ingress rule's
``from[].podSelector`` picks *source* pods in the policy's namespace. Every allowed
source -> target pair is a ``calls`` edge with ``{"via": "networkpolicy"}``. Policies are
additive, so a pod's allowed callers are the union over every policy that selects it with
``policyTypes`` containing Ingress; when none of those policies has an open rule the union
is complete, and the pod gets ``Coverage(pod, calls, incoming)``. Open rules (no ``from``,
an empty ``from``, ``ipBlock``, ``namespaceSelector``) admit callers the manifests cannot
enumerate: no coverage then; ipBlock and namespaceSelector peers are kept in the target's
``ingress_from`` attribute and warned about. Egress rules are not read.

Selectors match the pod-template labels of the workloads in the same run. A selector that
matches no workload but names its pods (``app``, ``app.kubernetes.io/name``, ``k8s-app``,
``name`` label) stands for a workload called that: a ``service`` node (``datastore`` /
``queue`` if the name says so) when the run has no workloads (policies imported on their
own), an ``external`` node plus a warning when it has (a dangling selector).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.importers.hints import kind_from_words
from placet.graph.importers.yamllines import MarkedList, MarkedMap, plain
from placet.graph.model import (
    Coverage,
    Direction,
    EdgeFact,
    EdgeKind,
    ImportWarning,
    NodeFact,
    NodeKind,
    Provenance,
)

NAMING_LABELS = ("app", "app.kubernetes.io/name", "k8s-app", "name")


@dataclass(frozen=True, slots=True)
class Pods:
    """The pods of one workload: its node id, kind, namespace and pod-template labels."""

    node: str
    kind: NodeKind
    namespace: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Policy:
    """One NetworkPolicy object and where it was defined."""

    name: str
    namespace: str
    doc: MarkedMap
    file: Path
    line: int


@dataclass(slots=True)
class PolicyFacts:
    """What the policies say: edges, coverage, nodes they had to infer, warnings."""

    nodes: list[NodeFact] = field(default_factory=list)
    edges: list[EdgeFact] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    warnings: list[ImportWarning] = field(default_factory=list)


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Does a LabelSelector (matchLabels + matchExpressions; ``{}`` = all) match ``labels``?"""
    if not isinstance(selector, Mapping):
        return False
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(str(k)) != str(v) for k, v in dict(wanted).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
        values = {str(v) for v in expr.get("values") or []}
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


def _naming_label(selector: Any) -> str | None:
    if not isinstance(selector, Mapping) or selector.get("matchExpressions"):
        return None
    labels = selector.get("matchLabels") or {}
    return next((str(labels[k]) for k in NAMING_LABELS if k in labels), None)


def policy_facts(
    policies: list[Policy], pods: list[Pods], source: str, importer: str
) -> PolicyFacts:
    """Edges, coverage and inferred nodes from ``policies`` against ``pods`` (module doc)."""
    return _Run(policies, list(pods), source, importer).facts()


@dataclass
class _Target:
    policy: Policy
    open: bool = False
    unresolved: list[str] = field(default_factory=list)


class _Run:
    def __init__(self, policies: list[Policy], pods: list[Pods], source: str, importer: str):
        self.policies, self.pods = policies, pods
        self.by_namespace: dict[str, list[Pods]] = {}
        for pod in pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
        self.has_workloads = bool(pods)
        self.prov: Callable[[Policy, int], Provenance] = lambda p, line: Provenance(
            source, importer, str(p.file), line
        )
        self.out = PolicyFacts()
        self.targets: dict[str, _Target] = {}
        self.edges: dict[tuple[str, str], EdgeFact] = {}

    def facts(self) -> PolicyFacts:
        for policy in self.policies:
            for selector, line in self._selectors(policy):
                self._infer(policy, selector, line)
        for policy in self.policies:
            self._policy(policy)
        self.out.edges.extend(self.edges.values())
        for node, target in self.targets.items():
            if not target.open:
                prov = self.prov(target.policy, target.policy.line)
                self.out.coverage.append(Coverage(node, EdgeKind.CALLS, Direction.INCOMING, prov))
        return self.out

    def _selectors(self, policy: Policy) -> list[tuple[Any, int]]:
        spec = policy.doc.get("spec")
        if not isinstance(spec, MarkedMap):
            return []
        found = [(spec.get("podSelector"), spec.line_of("podSelector"))]
        for rule in spec.get("ingress") or []:
            peers = rule.get("from") if isinstance(rule, MarkedMap) else None
            if not isinstance(peers, MarkedList):
                continue
            for index, peer in enumerate(peers):
                if isinstance(peer, MarkedMap) and "namespaceSelector" not in peer:
                    found.append((peer.get("podSelector"), peers.line_of(index)))
        return found

    def _infer(self, policy: Policy, selector: Any, line: int) -> None:
        """A selector that matches no pod but names them stands for that workload."""
        name = _naming_label(selector)
        if name is None or self._select(policy.namespace, selector):
            return
        labels = {str(k): str(v) for k, v in dict(selector.get("matchLabels")).items()}
        prov = self.prov(policy, line)
        if self.has_workloads:
            kind = NodeKind.EXTERNAL
            self.out.warnings.append(
                ImportWarning(
                    str(policy.file),
                    line,
                    (
                        f"NetworkPolicy {policy.name} selects pods labelled {labels}, which no "
                        f"workload in these manifests carries; kept as external node {name!r}"
                    ),
                )
            )
        else:
            kind = kind_from_words(name) or NodeKind.SERVICE
        self.pods.append(Pods(name, kind, policy.namespace, labels))
        self.by_namespace.setdefault(policy.namespace, []).append(self.pods[-1])
        self.out.nodes.append(
            NodeFact(
                name,
                kind,
                prov,
                name=name,
                attributes={
                    "namespace": policy.namespace,
                    "labels": labels,
                    "inferred_from": "networkpolicy",
                },
            )
        )

    def _select(self, namespace: str, selector: Any) -> list[Pods]:
        pods = self.by_namespace.get(namespace, [])
        return [p for p in pods if selector_matches(selector, p.labels)]

    def _policy(self, policy: Policy) -> None:
        spec = policy.doc.get("spec")
        if not isinstance(spec, MarkedMap):
            self.out.warnings.append(
                ImportWarning(
                    str(policy.file), policy.line, f"NetworkPolicy {policy.name} has no spec"
                )
            )
            return
        rules = spec.get("ingress")
        types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if "Ingress" not in types:
            return
        targets = self._select(policy.namespace, spec.get("podSelector"))
        if not targets:
            self.out.warnings.append(
                ImportWarning(
                    str(policy.file),
                    spec.line_of("podSelector"),
                    f"NetworkPolicy {policy.name} selects no pods",
                )
            )
        for target in targets:
            state = self.targets.setdefault(target.node, _Target(policy))
            if state.policy.doc["spec"].get("podSelector") == {} and spec.get("podSelector"):
                state.policy = policy  # cite the policy written for this pod, not a blanket one
        for rule in rules if isinstance(rules, MarkedList) else []:
            self._rule(policy, rule, targets)

    def _rule(self, policy: Policy, rule: Any, targets: list[Pods]) -> None:
        peers = rule.get("from") if isinstance(rule, MarkedMap) else None
        ports = [p.get("port") for p in (rule.get("ports") or []) if isinstance(p, MarkedMap)]
        if not isinstance(peers, MarkedList) or not peers:
            for target in targets:
                self.targets[target.node].open = True
            return
        for index, peer in enumerate(peers):
            peer_line = peers.line_of(index)
            if not isinstance(peer, MarkedMap) or "ipBlock" in peer or "namespaceSelector" in peer:
                self._unresolved(policy, peer, peer_line, targets)
                continue
            for caller in self._select(policy.namespace, peer.get("podSelector")):
                for target in targets:
                    if caller.node != target.node:
                        self._edge(policy, caller.node, target.node, peer_line, ports)

    def _unresolved(self, policy: Policy, peer: Any, line: int, targets: list[Pods]) -> None:
        what = f"peer {plain(peer)}"
        if isinstance(peer, MarkedMap) and isinstance(peer.get("ipBlock"), MarkedMap):
            what = f"ipBlock {plain(peer['ipBlock'])}"
        elif isinstance(peer, MarkedMap) and "namespaceSelector" in peer:
            what = f"namespaceSelector {plain(peer['namespaceSelector'])}"
            if "podSelector" in peer:
                what += f" with podSelector {plain(peer['podSelector'])}"
        names = ", ".join(t.node for t in targets) or "no pods"
        self.out.warnings.append(
            ImportWarning(
                str(policy.file),
                line,
                (
                    f"NetworkPolicy {policy.name} allows ingress to {names} from {what}; "
                    "those callers are not in these manifests, so incoming calls are not covered"
                ),
            )
        )
        for target in targets:
            self.targets[target.node].open = True
            self.out.nodes.append(
                NodeFact(
                    target.node,
                    target.kind,
                    self.prov(policy, line),
                    name=target.node,
                    attributes={"ingress_from": [what], "networkpolicy": policy.name},
                )
            )

    def _edge(self, policy: Policy, caller: str, target: str, line: int, ports: list[Any]) -> None:
        known = self.edges.get((caller, target))
        if known is not None:
            merged = sorted({*known.attributes["ports"], *(str(p) for p in ports)})
            policies = sorted({*known.attributes["policies"], policy.name})
            self.edges[(caller, target)] = EdgeFact(
                caller,
                target,
                EdgeKind.CALLS,
                known.provenance,
                {**known.attributes, "ports": merged, "policies": policies},
            )
            return
        self.edges[(caller, target)] = EdgeFact(
            caller,
            target,
            EdgeKind.CALLS,
            self.prov(policy, line),
            {
                "via": "networkpolicy",
                "policies": [policy.name],
                "ports": sorted({str(p) for p in ports}),
            },
        )
