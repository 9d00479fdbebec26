"""Calls between Kubernetes workloads, read from the addresses in their env, command and args.

For each container, env values (``$(VAR)`` expanded from earlier entries; ConfigMap values
through ``envFrom`` and ``configMapKeyRef`` when the ConfigMap is in the run), then
``command`` and ``args`` items are searched for hosts (:func:`hints.host_refs`). A host
resolves like cluster DNS: ``name`` in the workload's namespace, ``name.ns``,
``name.ns.svc`` and ``name.ns.svc.cluster.local`` in ``ns``; a Service resolves to the
nodes it fronts. Every host that counts (:func:`hints.counts`) gives a ``calls`` edge with
attributes ``{"via": "env"|"command"|"args", "refs": [...], "ports": [...]}``. A host:port or URL
naming no Service, or a bare name in an address-like variable (``*_ADDR``, ``*_HOST``...),
becomes an ``external`` node (named by the Service part of a ``.svc`` name, else the whole
host) and a warning; other bare words are not references. The importer has seen every
value of a workload, so each workload gets ``Coverage(workload, calls, outgoing)``, unless
a value comes from a Secret or a ConfigMap that is not in the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.importers.hints import counts, host_refs
from placet.graph.importers.yamllines import MarkedList, MarkedMap
from placet.graph.model import (
    Coverage,
    Direction,
    EdgeFact,
    EdgeKind,
    ImportWarning,
    NodeKind,
    Provenance,
    node_id,
)

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_CLUSTER_SUFFIXES: tuple[list[str], ...] = ([], ["svc"], ["svc", "cluster", "local"])


@dataclass(slots=True)
class Workload:
    """One workload object: its node, where it is defined, its pod labels and containers."""

    id: str
    kind: NodeKind
    k8s_kind: str
    name: str
    namespace: str
    labels: dict[str, str]
    containers: list[MarkedMap]
    file: Path
    line: int


@dataclass(frozen=True, slots=True)
class ConfigMap:
    """A ConfigMap's ``data`` and the file it is in."""

    data: MarkedMap
    file: Path


@dataclass(slots=True)
class CallFacts:
    """Edges, coverage, external nodes (id -> where first named) and warnings."""

    edges: dict[tuple[str, str], EdgeFact] = field(default_factory=dict)
    externals: dict[str, Provenance] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    warnings: list[ImportWarning] = field(default_factory=list)


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion from ``env``; ``$$`` escapes; unknown refs stay."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        return "$" if name is None else env.get(name, match.group(0))

    return _VAR.sub(sub, value)


def workload_calls(
    workloads: list[Workload],
    services: Mapping[tuple[str, str], list[str]],
    configmaps: Mapping[tuple[str, str], ConfigMap],
    source: str,
    importer: str,
) -> CallFacts:
    """The calls of every workload, resolved against ``services`` ((ns, name) -> node ids)."""
    run = _Calls(services, configmaps, source, importer)
    for workload in workloads:
        run.workload(workload)
    return run.out


class _Calls:
    def __init__(
        self,
        services: Mapping[tuple[str, str], list[str]],
        configmaps: Mapping[tuple[str, str], ConfigMap],
        source: str,
        importer: str,
    ) -> None:
        self.services, self.configmaps = services, configmaps
        self.source, self.importer = source, importer
        self.out = CallFacts()
        self.covered = True

    def prov(self, file: Path, line: int) -> Provenance:
        return Provenance(self.source, self.importer, str(file), line)

    def workload(self, w: Workload) -> None:
        self.covered = True
        for container in w.containers:
            cname = str(container.get("name", "?"))
            values: dict[str, str] = {}
            for key, value, file, line in self._env(w, container):
                values[key] = expand(value, values)
                self._value(w, values[key], f"{cname} env {key}", key, file, line, "env")
            for part in ("command", "args"):
                items = container.get(part)
                if not isinstance(items, MarkedList):
                    continue
                for index, item in enumerate(items):
                    where = f"{cname} {part}[{index}]"
                    line = items.line_of(index)
                    self._value(w, expand(str(item), values), where, None, w.file, line, part)
        if self.covered:
            prov = self.prov(w.file, w.line)
            self.out.coverage.append(Coverage(w.id, EdgeKind.CALLS, Direction.OUTGOING, prov))

    def _env(self, w: Workload, container: MarkedMap) -> list[tuple[str, str, Path, int]]:
        found: list[tuple[str, str, Path, int]] = []
        for item in container.get("envFrom") or []:
            ref = item.get("configMapRef") if isinstance(item, MarkedMap) else None
            if isinstance(item, MarkedMap) and "secretRef" in item:
                self.covered = False
            cm = self._configmap(w, ref.get("name") if isinstance(ref, MarkedMap) else None)
            if cm is not None:
                found += [(str(k), str(v), cm.file, cm.data.line_of(k)) for k, v in cm.data.items()]
        for entry in container.get("env") or []:
            if not isinstance(entry, MarkedMap):
                continue
            key = str(entry.get("name", ""))
            if "value" in entry:
                found.append((key, str(entry["value"]), w.file, entry.line_of("value")))
                continue
            source = entry.get("valueFrom")
            source = source if isinstance(source, MarkedMap) else MarkedMap()
            ref = source.get("configMapKeyRef")
            cm = self._configmap(w, ref.get("name")) if isinstance(ref, MarkedMap) else None
            if cm is not None and isinstance(ref, MarkedMap) and ref.get("key") in cm.data:
                name = ref["key"]
                found.append((key, str(cm.data[name]), cm.file, cm.data.line_of(name)))
            elif "secretKeyRef" in source or ref is not None:
                self.covered = False
        return found

    def _configmap(self, w: Workload, name: Any) -> ConfigMap | None:
        if not name:
            return None
        cm = self.configmaps.get((w.namespace, str(name)))
        if cm is None:
            self.covered = False
            self.out.warnings.append(
                ImportWarning(
                    str(w.file),
                    w.line,
                    (
                        f"{w.k8s_kind} {w.name} reads ConfigMap {name!r}, which is not in these "
                        "manifests; its outgoing calls are not covered"
                    ),
                )
            )
        return cm

    def _value(
        self, w: Workload, value: str, where: str, key: str | None, file: Path, line: int, via: str
    ) -> None:
        for ref in host_refs(value):
            targets, name = self._resolve(ref.host, w.namespace)
            if not counts(ref, targets is not None, key):
                continue
            if targets is None:
                nid = node_id(NodeKind.EXTERNAL, name)
                self.out.externals.setdefault(nid, self.prov(file, line))
                message = (
                    f"{w.k8s_kind} {w.name} {where} names {ref.token!r}, which no Service "
                    f"in these manifests defines; kept as external node {nid!r}"
                )
                self.out.warnings.append(ImportWarning(str(file), line, message))
                targets = [nid]
            for target in targets:
                if target != w.id:
                    self._edge(w.id, target, self.prov(file, line), via, where, ref.port)

    def _resolve(self, host: str, namespace: str) -> tuple[list[str] | None, str]:
        """Node ids a host resolves to (None if no Service), and the name it stands for."""
        labels = host.split(".")
        if len(labels) == 1:
            return self.services.get((namespace, host)), host
        if labels[2:] in _CLUSTER_SUFFIXES:
            return self.services.get((labels[1], labels[0])), labels[0] if labels[2:] else host
        return None, host

    def _edge(
        self, src: str, dst: str, prov: Provenance, via: str, ref: str, port: int | None
    ) -> None:
        old = self.out.edges.get((src, dst))
        refs = list(dict.fromkeys([*(old.attributes["refs"] if old else []), ref]))
        ports = sorted({*(old.attributes["ports"] if old else []), *([port] if port else [])})
        attrs = {"via": old.attributes["via"] if old else via, "refs": refs, "ports": ports}
        first = old.provenance if old else prov
        self.out.edges[(src, dst)] = EdgeFact(src, dst, EdgeKind.CALLS, first, attrs)
