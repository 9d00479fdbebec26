"""Backstage software catalog descriptors -> System Graph facts.

Every kind is read (see ``backstage_catalog`` for files, Locations and entity refs). A ref
without namespace uses the referring entity's. Node ids ignore the Backstage namespace,
which is kept as an attribute. Mapping:

- Component -> ``service``; ``datastore`` when ``spec.type`` is a storage type (database,
  db, datastore, cache, storage, bucket, object-storage), ``queue`` when a messaging type
  (queue, topic, kafka, kafka-topic, stream, message-broker, event-bus).
- Resource -> ``datastore`` / ``queue`` by the same types, else ``external`` (infrastructure
  the system uses but does not run as a service). ``spec.type``/``lifecycle`` are kept.
- API -> ``api``. Group -> ``team`` (attributes parent, children, members). User -> no node,
  listed in its groups' ``members`` as ``user:<name>``. System / Domain -> tags
  ``system:<name>`` / ``domain:<name>`` on their members. Template -> warning. Any other
  kind -> ``external`` node plus a warning.
- ``dependsOn`` (default kind component) and ``dependencyOf`` -> ``depends_on``;
  ``providesApis`` / ``consumesApis`` (default kind api) -> ``provides_api`` /
  ``consumes_api``. An entity's explicit ``dependsOn`` list covers its outgoing
  ``depends_on`` edges (a :class:`Coverage`); no ``dependsOn`` key, no claim.
- ``owner`` (default kind group) -> owner ``team:<group>`` or ``user:<user>`` and an
  ``owned_by`` edge to that id. Users are not nodes: a user owner's edge names an id no
  node has.
- A ref to an entity not in the catalog -> a placeholder node (attribute
  ``declared: false``) plus a warning: ``team`` for groups, ``api`` for APIs, ``external``
  for anything else.
- ``metadata.tags`` -> tags; annotations -> ``attributes["annotations"]``;
  ``placet.dev/tier`` -> tier; ``placet.dev/tags`` (comma-separated) -> more tags;
  ``backstage.io/source-location`` -> a source path when it is ``dir:``/``file:`` (relative
  to the common directory of the imported files) or a GitHub/GitLab tree/blob URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from placet.graph.importers.backstage_catalog import (
    API_VERSION,
    Catalog,
    Entity,
    EntityRef,
    parse_ref,
    read_catalog,
)
from placet.graph.importers.yamllines import MarkedList, plain
from placet.graph.model import (
    Coverage,
    Direction,
    EdgeFact,
    EdgeKind,
    ImportResult,
    NodeFact,
    NodeKind,
    Provenance,
    node_id,
)

NAME = "backstage"

_DATASTORE_TYPES = frozenset(
    {"database", "db", "datastore", "cache", "storage", "bucket", "object-storage"}
)
_QUEUE_TYPES = frozenset(
    {"queue", "topic", "kafka", "kafka-topic", "stream", "message-broker", "event-bus"}
)
_NODELESS = frozenset({"user", "system", "domain"})
_RELATIONS = (
    ("dependsOn", "component", EdgeKind.DEPENDS_ON),
    ("providesApis", "api", EdgeKind.PROVIDES_API),
    ("consumesApis", "api", EdgeKind.CONSUMES_API),
)
_TREE_URL = re.compile(r"/(?:-/)?(tree|blob)/[^/]+/(.*)$")


def detect(path: Path, text: str) -> bool:
    """Whether ``text`` holds a document with a ``*backstage.io/`` apiVersion."""
    return API_VERSION.search(text) is not None


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """Import the catalog in ``files``, following Location targets."""
    catalog = read_catalog(files)
    parents = [str(f.resolve().parent) for f in files] or [os.getcwd()]
    return _Mapper(catalog, source, Path(os.path.commonpath(parents))).run()


class _Mapper:
    """Turns a read catalog into node, edge and coverage facts."""

    def __init__(self, catalog: Catalog, source: str, root: Path) -> None:
        self.catalog, self.source, self.root = catalog, source, root
        self.entities = catalog.entities
        self.nodes: dict[str, NodeFact] = {}
        self.placeholders: dict[str, NodeFact] = {}
        self.edges: dict[tuple[str, str, EdgeKind], EdgeFact] = {}
        self.coverage: list[Coverage] = []
        self.members: dict[EntityRef, set[str]] = {}

    def run(self) -> ImportResult:
        self._collect_members()
        for entity in self.entities.values():
            self._entity(entity)
        extra = (n for n in self.placeholders.values() if n.id not in self.nodes)
        return ImportResult(
            importer=NAME,
            nodes=(*self.nodes.values(), *extra),
            edges=tuple(self.edges.values()),
            coverage=tuple(self.coverage),
            warnings=tuple(self.catalog.warnings),
            files=tuple(str(f) for f in self.catalog.files),
        )

    def _prov(self, entity: Entity, line: int | None) -> Provenance:
        return Provenance(self.source, NAME, str(entity.file), line)

    def _ref(self, raw: Any, default_kind: str, entity: Entity) -> EntityRef | None:
        return parse_ref(raw, default_kind, entity.namespace)

    def _target(self, raw: Any, default_kind: str, entity: Entity, what: str, line: int) -> str:
        """The node id a ref names ("" if none); a placeholder node when not in the catalog."""
        ref = self._ref(raw, default_kind, entity)
        where = f"{entity.kind} {entity.name} {what}"
        if ref is None:
            self.catalog.warn(entity.file, line, f"{where}: {raw!r} is not an entity ref")
            return ""
        found = self.entities.get(ref)
        if found is not None:
            kind = _node_kind(found)
            if kind is not None:
                return node_id(kind, found.name)
            self.catalog.warn(entity.file, line, f"{where}: {found.kind} {found.name} is no node")
            return ""
        kind = {"group": NodeKind.TEAM, "api": NodeKind.API}.get(ref[0], NodeKind.EXTERNAL)
        target, text = node_id(kind, ref[2]), f"{ref[0]}:{ref[1]}/{ref[2]}"
        message = f"{where}: {text} is not in the catalog; kept as {kind.value} node {target}"
        self.catalog.warn(entity.file, line, message)
        self.placeholders.setdefault(
            target,
            NodeFact(
                id=target,
                kind=kind,
                provenance=self._prov(entity, line),
                name=ref[2],
                attributes={"backstage_ref": text, "declared": False},
            ),
        )
        return target

    def _refs(self, entity: Entity, key: str, default_kind: str) -> Iterator[tuple[str, int]]:
        value = entity.spec.get(key)
        if value is None:
            return
        if not isinstance(value, MarkedList):
            self.catalog.warn(entity.file, entity.spec.line_of(key), f"{key} is not a list")
            return
        for index, raw in enumerate(value):
            line = value.line_of(index)
            target = self._target(raw, default_kind, entity, key, line)
            if target:
                yield target, line

    def _collect_members(self) -> None:
        for entity in self.entities.values():
            groups = entity.spec.get("memberOf") if entity.kind == "user" else None
            if not isinstance(groups, MarkedList):
                continue
            for index, raw in enumerate(groups):
                ref = self._ref(raw, "group", entity)
                if ref is None or ref not in self.entities:
                    message = f"User {entity.name} memberOf {raw!r}: no such Group in the catalog"
                    self.catalog.warn(entity.file, groups.line_of(index), message)
                else:
                    self.members.setdefault(ref, set()).add(f"user:{entity.name.lower()}")

    def _entity(self, entity: Entity) -> None:
        kind = _node_kind(entity)
        if kind is None:
            if entity.kind in _NODELESS:
                return
            message = f"unknown kind {entity.doc['kind']} ({entity.name}); kept as external"
            self.catalog.warn(entity.file, entity.line, message)
            kind = NodeKind.EXTERNAL
        nid = node_id(kind, entity.name)
        if nid in self.nodes:
            message = f"{entity.kind} {entity.name} maps to node {nid}, as another entity does"
            self.catalog.warn(entity.file, entity.line, message)
        spec, meta = entity.spec, entity.metadata
        owner = self._owner(entity)
        if owner:
            self._edge(nid, owner, EdgeKind.OWNED_BY, entity, spec.line_of("owner"))
        for key, default_kind, edge_kind in _RELATIONS:
            for target, line in self._refs(entity, key, default_kind):
                self._edge(nid, target, edge_kind, entity, line)
        for target, line in self._refs(entity, "dependencyOf", "component"):
            self._edge(target, nid, EdgeKind.DEPENDS_ON, entity, line)
        if "dependsOn" in spec:
            prov = self._prov(entity, spec.line_of("dependsOn"))
            self.coverage.append(Coverage(nid, EdgeKind.DEPENDS_ON, Direction.OUTGOING, prov))
        annotations = plain(meta.get("annotations")) or {}
        attributes: dict[str, Any] = {"backstage_kind": entity.doc["kind"]}
        if entity.namespace != "default":
            attributes["namespace"] = entity.namespace
        attributes.update(
            {k: spec[k] for k in ("type", "lifecycle") if isinstance(spec.get(k), str)}
        )
        attributes.update(
            {k: meta[k] for k in ("title", "description") if isinstance(meta.get(k), str)}
        )
        if annotations:
            attributes["annotations"] = annotations
        if entity.kind == "group":
            attributes.update(self._group_attributes(entity))
        tier = annotations.get("placet.dev/tier")
        location = annotations.get("backstage.io/source-location")
        self.nodes[nid] = NodeFact(
            id=nid,
            kind=kind,
            provenance=self._prov(entity, entity.line),
            name=entity.name,
            owner=owner or None,
            tier=None if tier is None else str(tier),
            tags=self._tags(entity, annotations),
            source_paths=_source_paths(location, entity.file, self.root),
            attributes=attributes,
        )

    def _edge(self, source: str, target: str, kind: EdgeKind, entity: Entity, line: int) -> None:
        """Record an edge once: the same relation stated twice keeps its first statement."""
        fact = EdgeFact(source, target, kind, self._prov(entity, line))
        self.edges.setdefault((source, target, kind), fact)

    def _owner(self, entity: Entity) -> str:
        raw = entity.spec.get("owner")
        if raw is None:
            return ""
        line = entity.spec.line_of("owner")
        ref = self._ref(raw, "group", entity)
        if ref is not None and ref[0] == "user":
            if ref not in self.entities:
                message = f"{entity.name} owner {raw}: no such User in the catalog"
                self.catalog.warn(entity.file, line, message)
            return f"user:{ref[2]}"
        if ref is not None and ref[0] != "group":
            message = f"{entity.name} owner {raw} is a {ref[0]}, not a group or user; not kept"
            self.catalog.warn(entity.file, line, message)
            return ""
        return self._target(raw, "group", entity, "owner", line)

    def _group_attributes(self, entity: Entity) -> dict[str, Any]:
        spec = entity.spec
        parent = self._ref(spec.get("parent"), "group", entity)
        children, listed = spec.get("children"), spec.get("members")
        child_refs = [self._ref(c, "group", entity) for c in _as_list(children)]
        member_refs = [self._ref(m, "user", entity) for m in _as_list(listed)]
        members = set(self.members.get(entity.ref, ()))
        members |= {f"user:{r[2]}" for r in member_refs if r is not None}
        return {
            "group_type": spec.get("type"),
            "parent": None if parent is None else node_id(NodeKind.TEAM, parent[2]),
            "children": sorted(node_id(NodeKind.TEAM, r[2]) for r in child_refs if r),
            "members": sorted(members),
        }

    def _tags(self, entity: Entity, annotations: dict[str, Any]) -> tuple[str, ...]:
        raw_tags = entity.metadata.get("tags")
        tags = [str(t) for t in raw_tags] if isinstance(raw_tags, list) else []
        system = self._ref(entity.spec.get("system"), "system", entity)
        if system is not None:
            tags.append(f"system:{system[2]}")
            found = self.entities.get(system)
            if found is None:
                message = f"{entity.name} system {system[2]} is not in the catalog"
                self.catalog.warn(entity.file, entity.spec.line_of("system"), message)
            else:
                domain = self._ref(found.spec.get("domain"), "domain", found)
                if domain is not None:
                    tags.append(f"domain:{domain[2]}")
        extra = annotations.get("placet.dev/tags")
        if isinstance(extra, str):
            tags.extend(t.strip() for t in extra.split(",") if t.strip())
        return tuple(dict.fromkeys(tags))


def _node_kind(entity: Entity) -> NodeKind | None:
    """The node kind of an entity; None for kinds that are no node or unknown."""
    spec_type = str(entity.spec.get("type", "")).lower()
    by_type = NodeKind.DATASTORE if spec_type in _DATASTORE_TYPES else None
    by_type = NodeKind.QUEUE if spec_type in _QUEUE_TYPES else by_type
    if entity.kind == "component":
        return by_type or NodeKind.SERVICE
    if entity.kind == "resource":
        return by_type or NodeKind.EXTERNAL
    return {"api": NodeKind.API, "group": NodeKind.TEAM}.get(entity.kind)


def _source_paths(value: Any, file: Path, root: Path) -> tuple[str, ...]:
    """``backstage.io/source-location`` as a path relative to ``root``, when it is one."""
    if not isinstance(value, str) or ":" not in value:
        return ()
    scheme, _, target = value.partition(":")
    if scheme in ("dir", "file") and "://" not in target:
        path = os.path.normpath(file.resolve().parent / target)
        rel = Path(os.path.relpath(path, root)).as_posix()
        if rel == ".":
            return ()
        return (rel + "/" if scheme == "dir" else rel,)
    match = _TREE_URL.search(urlparse(target).path) if scheme == "url" else None
    if match is None or not match[2].strip("/"):
        return ()
    return (match[2] if match[1] == "blob" else match[2].rstrip("/") + "/",)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
