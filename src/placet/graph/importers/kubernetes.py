"""Kubernetes manifests: workloads as nodes, addresses in env/args as calls, exposure, policies.

Files are multi-document YAML; empty documents are skipped and ``List`` objects expanded.
Kustomize files (``kustomization.yaml``, apiVersion ``kustomize.config.k8s.io/*``) are not
Kubernetes objects but belong beside them: :func:`detect` claims them (so a directory
import does not report them as unrecognised) and :func:`parse` skips them silently.

* **Nodes.** Each workload (Deployment, StatefulSet, DaemonSet, ReplicaSet,
  ReplicationController, Job, CronJob, Pod) is one node, id ``node_id(kind, metadata.name)``.
  A Service is not a node of its own: it resolves to the workloads whose pod-template labels
  its selector matches in its namespace. So a Service named like its workload (the usual
  case) is that node, and any other Service fronting it (``frontend-external``) is an alias,
  listed in the node's ``services`` attribute. A Service selecting no workload of the run is
  a ``service`` node of its own (warned about when it has a selector); an ExternalName
  Service is an ``external`` node.
* **Kind.** ``datastore`` / ``queue`` when a main container's image says so (``redis:alpine``
  -> datastore, see :mod:`hints`), for a StatefulSet also when its name does; else ``service``.
* **Calls.** Env values, ``command`` and ``args`` that name a Service (``name``,
  ``name:port``, ``name.ns``, ``name.ns.svc[.cluster.local]``, URLs) give ``calls`` edges;
  a host naming no Service becomes an ``external`` node and a warning; each workload's
  values cover its outgoing calls. See :mod:`kubernetes_calls`.
* **Exposure.** LoadBalancer and NodePort Services, and Ingress backends, tag the nodes they
  front ``internet-facing`` (``exposed_by`` says why).
* **Policies.** NetworkPolicy ingress rules: see :mod:`kubernetes_netpol`.
* **Namespaces.** An explicit ``metadata.namespace`` gives a ``part_of`` edge to
  ``environment:<namespace>``; objects without one are in ``default`` but get no edge.
* **Other kinds.** :data:`IGNORED_KINDS` carry no graph facts and are skipped; any other kind
  becomes an ``external`` node ``<kind>/<name>`` plus a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.errors import GraphInputError
from placet.graph.importers.hints import image_repository, kind_from_words
from placet.graph.importers.kubernetes_calls import ConfigMap, Workload, workload_calls
from placet.graph.importers.kubernetes_netpol import Pods, Policy, policy_facts
from placet.graph.importers.yamllines import MarkedList, MarkedMap, load_documents
from placet.graph.model import (
    INTERNET_FACING,
    EdgeFact,
    EdgeKind,
    ImportResult,
    ImportWarning,
    NodeFact,
    NodeKind,
    Provenance,
    node_id,
)

NAME = "kubernetes"
WORKLOAD_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "Pod",
    }
)
IGNORED_KINDS = frozenset(
    {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "StorageClass",
        "HorizontalPodAutoscaler",
        "VerticalPodAutoscaler",
        "PodDisruptionBudget",
        "LimitRange",
        "ResourceQuota",
        "PriorityClass",
        "CustomResourceDefinition",
        "Endpoints",
        "EndpointSlice",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)
_HANDLED = frozenset({"*", "Service", "Ingress", "NetworkPolicy", "Namespace"})
KUSTOMIZE_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "kustomization"})
_API = re.compile(r"(?m)^apiVersion:\s*['\"]?(?:[\w.-]+/)?v\d+(?:(?:alpha|beta)\d+)?['\"]?\s*$")
_KIND = re.compile(r"(?m)^kind:\s*['\"]?[A-Z]\w*['\"]?\s*(?:#.*)?$")
_BACKSTAGE = re.compile(r"(?m)^apiVersion:\s*['\"]?[\w.-]*backstage\.io/")
_KUSTOMIZE = re.compile(r"(?m)^apiVersion:\s*['\"]?kustomize\.config\.k8s\.io/")


def detect(path: Path, text: str) -> bool:
    """Top-level ``apiVersion`` and ``kind`` of a Kubernetes object (not Backstage), or a
    kustomize file."""
    if path.name.lower() in KUSTOMIZE_FILES or _KUSTOMIZE.search(text):
        return True
    return bool(_API.search(text) and _KIND.search(text) and not _BACKSTAGE.search(text))


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """Import the objects of ``files`` (all resolved against each other; see module doc)."""
    return _Import(source).run(files)


@dataclass(frozen=True, slots=True)
class _Obj:
    kind: str
    name: str
    namespace: str
    explicit_ns: bool
    doc: MarkedMap
    file: Path
    line: int

    def section(self, *path: str) -> MarkedMap:
        value: Any = self.doc
        for key in path:
            value = value.get(key) if isinstance(value, MarkedMap) else None
        return value if isinstance(value, MarkedMap) else MarkedMap(self.line)


@dataclass(slots=True)
class _Draft:
    kind: NodeKind
    prov: Provenance
    tags: set[str] = field(default_factory=set)
    attributes: dict[str, Any] = field(default_factory=dict)


class _Import:
    def __init__(self, source: str) -> None:
        self.source = source
        self.objects: list[_Obj] = []
        self.files: list[str] = []
        self.drafts: dict[str, _Draft] = {}
        self.edges: list[EdgeFact] = []
        self.warnings: list[ImportWarning] = []
        self.workloads: list[Workload] = []
        self.services: dict[tuple[str, str], list[str]] = {}
        self.by_label: dict[tuple[str, str, str], list[Workload]] = {}  # (ns, key, value)

    def prov(self, file: Path, line: int | None) -> Provenance:
        return Provenance(self.source, NAME, str(file), line)

    def warn(self, file: Path, line: int | None, message: str) -> None:
        self.warnings.append(ImportWarning(str(file), line, message))

    def run(self, files: Sequence[Path]) -> ImportResult:
        for file in files:
            if file.name.lower() not in KUSTOMIZE_FILES:
                self.files.append(str(file))
                for doc, line in load_documents(file):
                    self._document(doc, line, file)
        by_kind: dict[str, list[_Obj]] = {}
        for obj in self.objects:
            by_kind.setdefault("*" if obj.kind in WORKLOAD_KINDS else obj.kind, []).append(obj)
        for obj in by_kind.get("Namespace", []):
            self._environment(obj.name, self.prov(obj.file, obj.line))
        for obj in by_kind.get("*", []):
            self._workload(obj)
        for w in self.workloads:
            for label in w.labels.items():
                self.by_label.setdefault((w.namespace, *label), []).append(w)
        for obj in by_kind.get("Service", []):
            self._service(obj)
        for obj in by_kind.get("Ingress", []):
            self._ingress(obj)
        for kind, objs in by_kind.items():
            if kind not in _HANDLED | IGNORED_KINDS:
                for obj in objs:
                    self._unknown(obj)
        configmaps = {
            (o.namespace, o.name): ConfigMap(o.section("data"), o.file)
            for o in by_kind.get("ConfigMap", [])
        }
        calls = workload_calls(self.workloads, self.services, configmaps, self.source, NAME)
        for nid, prov in calls.externals.items():
            self._draft(nid, NodeKind.EXTERNAL, prov)
        policies = [
            Policy(o.name, o.namespace, o.doc, o.file, o.line)
            for o in by_kind.get("NetworkPolicy", [])
        ]
        pods = [Pods(w.id, w.kind, w.namespace, w.labels) for w in self.workloads]
        netpol = policy_facts(policies, pods, self.source, NAME)
        return ImportResult(
            importer=NAME,
            nodes=(*self._nodes(), *netpol.nodes),
            edges=(*self.edges, *calls.edges.values(), *netpol.edges),
            coverage=(*calls.coverage, *netpol.coverage),
            warnings=(*self.warnings, *calls.warnings, *netpol.warnings),
            files=tuple(self.files),
        )

    def _document(self, doc: Any, line: int, file: Path) -> None:
        if doc is None:
            return
        if not isinstance(doc, MarkedMap):
            raise GraphInputError(
                str(file), "document is not a Kubernetes object (a mapping)", line
            )
        api, kind = doc.get("apiVersion"), doc.get("kind")
        if str(api).startswith("kustomize.config.k8s.io/"):
            return
        items = doc.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, MarkedList):
            for index, item in enumerate(items):
                self._document(item, items.line_of(index), file)
            return
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, MarkedMap) else MarkedMap(line)
        name, namespace = meta.get("name"), meta.get("namespace")
        if not isinstance(api, str) or not isinstance(kind, str) or not name:
            self.warn(file, line, "not a Kubernetes object (no apiVersion, kind or name); skipped")
            return
        ns = str(namespace or "default")
        self.objects.append(_Obj(kind, str(name), ns, bool(namespace), doc, file, line))

    def _draft(self, nid: str, kind: NodeKind, prov: Provenance) -> _Draft:
        return self.drafts.setdefault(nid, _Draft(kind, prov))

    def _environment(self, namespace: str, prov: Provenance) -> str:
        env = node_id(NodeKind.ENVIRONMENT, namespace)
        self._draft(env, NodeKind.ENVIRONMENT, prov)
        return env

    def _part_of(self, nid: str, obj: _Obj) -> None:
        if obj.explicit_ns:
            prov = self.prov(obj.file, obj.section("metadata").line_of("namespace"))
            env = self._environment(obj.namespace, prov)
            self.edges.append(EdgeFact(nid, env, EdgeKind.PART_OF, prov))

    def _workload(self, obj: _Obj) -> None:
        if obj.kind == "CronJob":
            template = obj.section("spec", "jobTemplate", "spec", "template")
        else:
            template = obj.doc if obj.kind == "Pod" else obj.section("spec", "template")
        pod = template.get("spec")
        pod = pod if isinstance(pod, MarkedMap) else MarkedMap()
        meta = template.get("metadata")
        labels = meta.get("labels") if isinstance(meta, MarkedMap) else None
        main = [c for c in pod.get("containers") or [] if isinstance(c, MarkedMap)]
        init = [c for c in pod.get("initContainers") or [] if isinstance(c, MarkedMap)]
        images = [str(c.get("image", "")) for c in main]
        kinds = [kind_from_words(image_repository(i)) for i in images]
        if obj.kind == "StatefulSet":
            kinds.append(kind_from_words(obj.name))
        kind = next((k for k in kinds if k is not None), NodeKind.SERVICE)
        nid = node_id(kind, obj.name)
        first = self.drafts.get(nid)
        if first is not None:
            self.warn(
                obj.file,
                obj.line,
                f"{obj.kind} {obj.name} has the same node id as "
                f"{first.prov.file}:{first.prov.line}; merged into one node",
            )
        draft = self._draft(nid, kind, self.prov(obj.file, obj.line))
        draft.attributes.update(
            {"k8s_kind": obj.kind, "namespace": obj.namespace, "images": images}
        )
        draft.attributes.setdefault("services", [])
        pod_labels = {str(k): str(v) for k, v in dict(labels or {}).items()}
        self.workloads.append(
            Workload(
                nid,
                kind,
                obj.kind,
                obj.name,
                obj.namespace,
                pod_labels,
                init + main,
                obj.file,
                obj.line,
            )
        )
        self._part_of(nid, obj)

    def _service(self, obj: _Obj) -> None:
        spec = obj.section("spec")
        selector = {str(k): str(v) for k, v in dict(spec.get("selector") or {}).items()}
        kind = str(spec.get("type", "ClusterIP"))
        candidates = min(
            (self.by_label.get((obj.namespace, k, v), []) for k, v in selector.items()),
            key=len,
            default=[],
        )
        targets = [
            w.id for w in candidates if all(w.labels.get(k) == v for k, v in selector.items())
        ]
        if kind == "ExternalName":
            targets = [node_id(NodeKind.EXTERNAL, obj.name)]
            draft = self._draft(targets[0], NodeKind.EXTERNAL, self.prov(obj.file, obj.line))
            draft.attributes["external_name"] = str(spec.get("externalName", ""))
        elif not targets:
            if selector:
                self.warn(
                    obj.file,
                    obj.line,
                    f"Service {obj.name} selects {selector}, which no "
                    "workload in these manifests carries; kept as its own node",
                )
            targets = [node_id(NodeKind.SERVICE, obj.name)]
            self._draft(targets[0], NodeKind.SERVICE, self.prov(obj.file, obj.line))
            self._part_of(targets[0], obj)
        self.services[(obj.namespace, obj.name)] = list(dict.fromkeys(targets))
        for target in targets:
            self.drafts[target].attributes.setdefault("services", []).append(obj.name)
            if kind in ("LoadBalancer", "NodePort"):
                self._expose(target, f"Service/{obj.name} ({kind})")

    def _expose(self, nid: str, reason: str) -> None:
        draft = self.drafts[nid]
        draft.tags.add(INTERNET_FACING)
        draft.attributes.setdefault("exposed_by", []).append(reason)

    def _ingress(self, obj: _Obj) -> None:
        spec = obj.section("spec")
        backends = [(spec[k], spec.line_of(k)) for k in ("defaultBackend", "backend") if k in spec]
        for rule in spec.get("rules") or []:
            http = rule.get("http") if isinstance(rule, MarkedMap) else None
            paths = http.get("paths") if isinstance(http, MarkedMap) else None
            if isinstance(paths, MarkedList):
                backends += [
                    (p.get("backend"), paths.line_of(i))
                    for i, p in enumerate(paths)
                    if isinstance(p, MarkedMap)
                ]
        for backend, line in backends:
            svc = backend.get("service") if isinstance(backend, MarkedMap) else None
            name = svc.get("name") if isinstance(svc, MarkedMap) else None
            if name is None and isinstance(backend, MarkedMap):
                name = backend.get("serviceName")  # networking.k8s.io/v1beta1
            if not name:
                continue
            targets = self.services.get((obj.namespace, str(name)))
            if targets is None:
                nid = node_id(NodeKind.EXTERNAL, str(name))
                self._draft(nid, NodeKind.EXTERNAL, self.prov(obj.file, line))
                self.warn(
                    obj.file,
                    line,
                    f"Ingress {obj.name} routes to Service {name!r}, which "
                    f"is not in these manifests; kept as external node {nid!r}",
                )
                targets = [nid]
            for target in targets:
                self._expose(target, f"Ingress/{obj.name}")

    def _unknown(self, obj: _Obj) -> None:
        nid = node_id(NodeKind.EXTERNAL, f"{obj.kind}/{obj.name}")
        draft = self._draft(nid, NodeKind.EXTERNAL, self.prov(obj.file, obj.line))
        draft.attributes.update({"k8s_kind": obj.kind, "namespace": obj.namespace})
        self.warn(
            obj.file,
            obj.line,
            f"unknown kind {obj.kind} ({obj.name}); kept as external node {nid!r}",
        )

    def _nodes(self) -> list[NodeFact]:
        return [
            NodeFact(
                nid,
                d.kind,
                d.prov,
                name=nid.split(":", 1)[-1],
                tags=tuple(sorted(d.tags)),
                attributes=d.attributes,
            )
            for nid, d in self.drafts.items()
        ]
