"""Docker Compose files: services as nodes, start-up dependencies, addresses, published ports.

Every string in the file is first interpolated from the ``.env`` beside it, as docker compose
does (:mod:`compose_env`; never from the process environment, so imports are reproducible).

* **Nodes.** Each service is a node named after the service. Kind by image, else by service
  name (:mod:`hints`): redis, valkey, postgres, mysql, mongo, cassandra, memcached,
  elasticsearch, opensearch... -> ``datastore``; kafka, rabbitmq, nats... -> ``queue``;
  else ``service``. A ``build`` gives the node a source path (the Dockerfile's directory, or
  the context, relative to the compose file; not when that is the compose directory itself).
* **depends_on** (list form: condition ``service_started``; mapping form: ``condition``,
  ``required``, ``restart`` kept), **links** (``svc`` or ``svc:alias``), ``volumes_from`` and
  ``network_mode: service:x`` -> ``depends_on`` edges, ``{"via": ...}``. Links are start-up
  order plus a DNS alias: depends_on, not calls. A name no compose file of the directory
  defines becomes an ``external`` node and a warning.
* **Calls.** Environment values (``K=V`` list and mapping forms; ``K`` alone takes its value
  from ``.env``; ``env_file`` files read) and ``command``/``entrypoint`` naming another
  service (service name, ``container_name`` or network alias; ``host``, ``host:port``, URLs,
  ``Host=x`` in connection strings: :func:`hints.counts`) -> ``calls`` edges
  ``{"via": "environment", "refs", "ports"}``. A host that no service answers to -> an
  ``external`` node and a warning. ``hostname:`` is the container's own name, not a DNS name
  other containers resolve, so it is not used for resolution.
* **Exposure.** A port published on a fixed host port on every interface (no host IP,
  ``0.0.0.0``, ``::``) or a non-loopback IP tags the node ``internet-facing``; a port
  published on an ephemeral host port (``"8080"``) tags it ``exposed``; ``127.0.0.1`` binds
  tag nothing. All are listed in the ``published`` attribute.
* Names resolve first among the file's own services, then among those of the other compose
  files of the same directory in the run (``compose.yaml`` + ``compose.full.yaml``).
  ``extends`` and ``include`` are not followed (a warning says so). Compose states no
  complete set of calls, so no coverage is claimed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.errors import GraphInputError
from placet.graph.importers.compose_env import Missing, TemplateError, interpolate, parse_dotenv
from placet.graph.importers.compose_fields import (
    build_paths,
    merge_definitions,
    published_ports,
    service_kind,
)
from placet.graph.importers.hints import counts, host_refs
from placet.graph.importers.yamllines import MarkedList, MarkedMap, load_documents
from placet.graph.model import (
    EdgeFact,
    EdgeKind,
    ImportResult,
    ImportWarning,
    NodeFact,
    NodeKind,
    Provenance,
    node_id,
)

NAME = "compose"
_DETECT = re.compile(r"(?m)^services:\s*(?:#.*)?$|^services:\s*\{")


def detect(path: Path, text: str) -> bool:
    """A top-level ``services:`` mapping, or a ``.env`` file (read with its compose files)."""
    return path.name == ".env" or bool(_DETECT.search(text))


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """Import the compose ``files`` (see the module docstring)."""
    return _Import(source).run(files)


@dataclass(slots=True)
class _File:
    path: Path
    services: MarkedMap
    names: dict[str, str] = field(default_factory=dict)  # DNS name -> service


class _Import:
    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: dict[str, NodeFact] = {}
        self.edges: dict[tuple[str, str, EdgeKind], EdgeFact] = {}
        self.warnings: list[ImportWarning] = []
        self.dotenv: dict[Path, dict[str, str]] = {}

    def prov(self, file: Path, line: int | None) -> Provenance:
        return Provenance(self.source, NAME, str(file), line)

    def warn(self, file: Path, line: int | None, message: str) -> None:
        self.warnings.append(ImportWarning(str(file), line, message))

    def run(self, files: Sequence[Path]) -> ImportResult:
        loaded = [self._load(path) for path in files if path.name != ".env"]
        by_dir: dict[Path, list[_File]] = {}
        for item in loaded:
            by_dir.setdefault(item.path.parent, []).append(item)
        for path in files:
            if path.name == ".env" and path.parent not in by_dir:
                self.warn(path, None, "no compose file beside this .env in the import; not used")
        for item in loaded:
            siblings = by_dir[item.path.parent]
            for name, service in item.services.items():
                self._service(item, siblings, str(name), service)
        return ImportResult(
            importer=NAME,
            nodes=tuple(self.nodes.values()),
            edges=tuple(self.edges.values()),
            warnings=tuple(self.warnings),
            files=tuple(str(f) for f in files),
        )

    # -- loading -------------------------------------------------------------------------

    def _env(self, directory: Path) -> dict[str, str]:
        if directory not in self.dotenv:
            path = directory / ".env"
            missing = self._missing(path, None)
            self.dotenv[directory] = parse_dotenv(path, {}, missing) if path.is_file() else {}
        return self.dotenv[directory]

    def _missing(self, file: Path, line: int | None) -> Missing:
        def report(name: str, what: str) -> None:
            self.warn(file, line, f"variable {name} {what} (only .env and defaults are read)")

        return report

    def _load(self, path: Path) -> _File:
        documents = [(d, line) for d, line in load_documents(path) if d is not None]
        if len(documents) != 1 or not isinstance(documents[0][0], MarkedMap):
            line = documents[1][1] if len(documents) > 1 else None
            raise GraphInputError(str(path), "expected one compose document (a mapping)", line)
        doc = documents[0][0]
        env = self._env(path.parent)
        self._interpolate(doc, env, path)
        if "include" in doc:
            self.warn(
                path, doc.line_of("include"), "include is not followed; import those files too"
            )
        services = doc.get("services")
        if not isinstance(services, MarkedMap):
            raise GraphInputError(str(path), "services must be a mapping", doc.line_of("services"))
        item = _File(path, services)
        for name, service in services.items():
            item.names.setdefault(str(name).lower(), str(name))
            if not isinstance(service, MarkedMap):
                services[name] = MarkedMap(services.line_of(name))
                continue
            if service.get("container_name"):
                item.names.setdefault(str(service["container_name"]).lower(), str(name))
            networks = service.get("networks")
            for net in networks.values() if isinstance(networks, MarkedMap) else []:
                for alias in (net.get("aliases") or []) if isinstance(net, MarkedMap) else []:
                    item.names.setdefault(str(alias).lower(), str(name))
            for link in service.get("links") or []:
                target, _, alias = str(link).partition(":")
                item.names.setdefault((alias or target).lower(), target)
        return item

    def _interpolate(self, node: Any, env: dict[str, str], path: Path) -> None:
        keys: list[Any] = list(node) if isinstance(node, MarkedMap) else []
        indexes = range(len(node)) if isinstance(node, MarkedList) else range(0)
        for place in [*keys, *indexes]:
            value = node[place]
            line = node.line_of(place)
            if isinstance(value, str):
                try:
                    node[place] = interpolate(value, env, self._missing(path, line))
                except TemplateError as exc:
                    raise GraphInputError(str(path), str(exc), line) from exc
            else:
                self._interpolate(value, env, path)

    # -- services ------------------------------------------------------------------------

    def _service(self, item: _File, siblings: list[_File], name: str, svc: MarkedMap) -> None:
        path, line = item.path, item.services.line_of(name)
        kind = service_kind(name, svc)
        nid = node_id(kind, name)
        if "extends" in svc:
            self.warn(path, svc.line_of("extends"), f"service {name}: extends is not followed")
        tags, published = published_ports(svc)
        attributes: dict[str, Any] = {"compose_file": path.name, "published": published}
        attributes.update({k: str(svc[k]) for k in ("image", "container_name") if svc.get(k)})
        node = NodeFact(
            nid,
            kind,
            self.prov(path, line),
            name=name,
            tags=tuple(sorted(tags)),
            source_paths=build_paths(svc.get("build")),
            attributes=attributes,
        )
        self.nodes[nid] = merge_definitions(self.nodes[nid], node) if nid in self.nodes else node
        self._dependencies(item, siblings, nid, svc)
        for key, value, vline in self._environment(item, svc):
            self._calls(item, siblings, nid, value, key, vline)
        for part in ("command", "entrypoint"):
            items = svc.get(part)
            if isinstance(items, MarkedList):
                for index, arg in enumerate(items):
                    self._calls(item, siblings, nid, str(arg), None, items.line_of(index))
            elif isinstance(items, str):
                self._calls(item, siblings, nid, items, None, svc.line_of(part))

    def _dependencies(self, item: _File, siblings: list[_File], nid: str, svc: MarkedMap) -> None:
        deps = svc.get("depends_on")
        if isinstance(deps, MarkedList):
            for index, dep in enumerate(deps):
                attrs = {"via": "depends_on", "condition": "service_started"}
                self._depend(item, siblings, nid, str(dep), deps.line_of(index), attrs)
        elif isinstance(deps, MarkedMap):
            for dep, spec in deps.items():
                spec = spec if isinstance(spec, MarkedMap) else MarkedMap()
                attrs = {
                    "via": "depends_on",
                    "condition": str(spec.get("condition", "service_started")),
                }
                attrs.update({k: spec[k] for k in ("required", "restart") if k in spec})
                self._depend(item, siblings, nid, str(dep), deps.line_of(dep), attrs)
        for via in ("links", "volumes_from"):
            entries = svc.get(via)
            if not isinstance(entries, MarkedList):
                continue
            for index, entry in enumerate(entries):
                target, _, alias = str(entry).partition(":")
                if via == "volumes_from" and target == "container":
                    continue  # volumes_from: container:<name> names a container, not a service
                attrs = {"via": via, **({"alias": alias} if alias and via == "links" else {})}
                self._depend(item, siblings, nid, target, entries.line_of(index), attrs)
        mode = str(svc.get("network_mode") or "")
        if mode.startswith("service:"):
            self._depend(
                item, siblings, nid, mode[8:], svc.line_of("network_mode"), {"via": "network_mode"}
            )

    def _depend(
        self,
        item: _File,
        siblings: list[_File],
        nid: str,
        name: str,
        line: int,
        attrs: dict[str, Any],
    ) -> None:
        target = self._resolve(item, siblings, name, by_dns=False)
        if target is None:
            target = self._dangling(item.path, line, name, f"service {nid} {attrs['via']} {name}")
        key = (nid, target, EdgeKind.DEPENDS_ON)
        if key not in self.edges:
            self.edges[key] = EdgeFact(
                nid, target, EdgeKind.DEPENDS_ON, self.prov(item.path, line), attrs
            )

    def _environment(self, item: _File, svc: MarkedMap) -> list[tuple[str, str, int]]:
        dotenv = self._env(item.path.parent)
        found: dict[str, tuple[str, int]] = {}
        env_files = svc.get("env_file")
        if not isinstance(env_files, MarkedList):
            env_files = MarkedList(svc.line_of("env_file"))
            env_files.extend([svc["env_file"]] if svc.get("env_file") else [])
        for index, entry in enumerate(env_files):
            spec = entry if isinstance(entry, MarkedMap) else {"path": entry}
            line = env_files.line_of(index)
            path = item.path.parent / str(spec.get("path"))
            if path.is_file():
                values = parse_dotenv(path, dotenv, self._missing(path, None))
                found.update({k: (v, line) for k, v in values.items()})
            elif spec.get("required", True):
                self.warn(item.path, line, f"env_file {path} does not exist; not read")
        env = svc.get("environment")
        pairs: list[tuple[str, Any, int]] = []
        if isinstance(env, MarkedList):
            for index, entry in enumerate(env):
                key, sep, value = str(entry).partition("=")
                pairs.append((key, value if sep else None, env.line_of(index)))
        elif isinstance(env, MarkedMap):
            pairs = [(str(k), v, env.line_of(k)) for k, v in env.items()]
        for key, value, line in pairs:
            if value is None:
                if key in dotenv:
                    found[key] = (dotenv[key], line)
            else:
                found[key] = (str(value).lower() if isinstance(value, bool) else str(value), line)
        return [(key, value, line) for key, (value, line) in found.items()]

    def _calls(
        self, item: _File, siblings: list[_File], nid: str, value: str, key: str | None, line: int
    ) -> None:
        for ref in host_refs(value):
            target = self._resolve(item, siblings, ref.host, by_dns=True)
            if not counts(ref, target is not None, key) or target == nid:
                continue
            where = f"environment {key}" if key else "command"
            if target is None:
                target = self._dangling(
                    item.path, line, ref.host, f"service {nid} {where} names {ref.token!r}"
                )
            edge_key = (nid, target, EdgeKind.CALLS)
            old = self.edges.get(edge_key)
            refs = list(dict.fromkeys([*(old.attributes["refs"] if old else []), where]))
            ports = sorted(
                {*(old.attributes["ports"] if old else []), *([ref.port] if ref.port else [])}
            )
            attrs = {"via": "environment" if key else "command", "refs": refs, "ports": ports}
            prov = old.provenance if old else self.prov(item.path, line)
            self.edges[edge_key] = EdgeFact(nid, target, EdgeKind.CALLS, prov, attrs)

    def _resolve(self, item: _File, siblings: list[_File], name: str, by_dns: bool) -> str | None:
        for candidate in [item, *siblings]:
            service = candidate.names.get(name.lower()) if by_dns else name
            if service is not None and service in candidate.services:
                return node_id(NodeKind.SERVICE, service)  # same bare id for every kind
        return None

    def _dangling(self, file: Path, line: int, name: str, what: str) -> str:
        nid = node_id(NodeKind.EXTERNAL, name)
        self.warn(
            file, line, f"{what}, which no compose file here defines; kept as external node {nid!r}"
        )
        if nid not in self.nodes:
            self.nodes[nid] = NodeFact(nid, NodeKind.EXTERNAL, self.prov(file, line), name=name)
        return nid
