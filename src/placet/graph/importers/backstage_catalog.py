"""Reading a Backstage catalog: descriptor files, Location targets and entity references.

:func:`read_catalog` loads every entity from the given files and follows ``Location``
targets relative to their file, recursively: a file reached twice is read once, a cycle is
a warning, a missing target is a warning (unless the Location says ``presence: optional``),
remote (URL) targets are warnings. :func:`parse_ref` reads entity refs in every form.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placet.graph.importers.yamllines import MarkedList, MarkedMap, load_documents
from placet.graph.model import ImportWarning

API_VERSION = re.compile(r"^apiVersion:\s*['\"]?([\w-]+\.)*backstage\.io/", re.MULTILINE)
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_REF = re.compile(r"^(?:(?P<kind>[^:/]+):)?(?:(?P<ns>[^:/]+)/)?(?P<name>[^:/]+)$")

# (kind, namespace, name), all lowercase: how Backstage compares entity refs.
EntityRef = tuple[str, str, str]


@dataclass(slots=True)
class Entity:
    """One catalog entity: lowercase kind and namespace, name as written, its document."""

    kind: str
    namespace: str
    name: str
    doc: MarkedMap
    file: Path
    line: int

    @property
    def ref(self) -> EntityRef:
        """How other entities refer to this one."""
        return (self.kind, self.namespace, self.name.lower())

    @property
    def spec(self) -> MarkedMap:
        """``spec`` (empty when absent or not a mapping)."""
        spec = self.doc.get("spec")
        return spec if isinstance(spec, MarkedMap) else MarkedMap(self.line)

    @property
    def metadata(self) -> MarkedMap:
        """``metadata`` (empty when absent or not a mapping)."""
        meta = self.doc.get("metadata")
        return meta if isinstance(meta, MarkedMap) else MarkedMap(self.line)


def parse_ref(raw: Any, default_kind: str, namespace: str) -> EntityRef | None:
    """``[kind:][namespace/]name`` (or a ``{kind, namespace, name}`` mapping) as a ref."""
    if isinstance(raw, dict):
        kind, ns, name = raw.get("kind") or default_kind, raw.get("namespace"), raw.get("name")
        if not isinstance(name, str) or not name.strip():
            return None
        return (str(kind).lower(), str(ns or namespace).lower(), name.strip().lower())
    return _parse_text_ref(raw, default_kind, namespace) if isinstance(raw, str) else None


@functools.lru_cache(maxsize=65536)
def _parse_text_ref(raw: str, default_kind: str, namespace: str) -> EntityRef | None:
    match = _REF.match(raw.strip())
    if match is None:
        return None
    kind = (match["kind"] or default_kind).lower()
    return (kind, (match["ns"] or namespace).lower(), match["name"].lower())


@dataclass(slots=True)
class Catalog:
    """Every entity read, the files read (in order) and what could not be taken as given."""

    entities: dict[EntityRef, Entity] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    warnings: list[ImportWarning] = field(default_factory=list)
    _seen: set[Path] = field(default_factory=set)

    def warn(self, file: Path, line: int | None, message: str) -> None:
        """Record something that could not be taken as given."""
        self.warnings.append(ImportWarning(str(file), line, message))


def read_catalog(files: Sequence[Path]) -> Catalog:
    """Load ``files`` and everything their Locations point to."""
    catalog = Catalog()
    for file in files:
        _visit(catalog, file, (), None)
    return catalog


def _visit(
    catalog: Catalog, file: Path, chain: tuple[Path, ...], via: tuple[Path, int] | None
) -> None:
    real = file.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(real) :], real))
        where = via or (file, None)
        catalog.warn(where[0], where[1], f"Location cycle ({cycle}); not followed again")
        return
    if real in catalog._seen:
        return
    catalog._seen.add(real)
    catalog.files.append(file)
    for doc, line in load_documents(file):
        _document(catalog, doc, line, file, (*chain, real))


def _document(catalog: Catalog, doc: Any, line: int, file: Path, chain: tuple[Path, ...]) -> None:
    if doc is None:
        return
    if not isinstance(doc, MarkedMap):
        catalog.warn(file, line, "document is not a mapping; skipped")
        return
    kind, meta = doc.get("kind"), doc.get("metadata")
    name = meta.get("name") if isinstance(meta, MarkedMap) else None
    if not isinstance(kind, str) or not isinstance(name, str) or not name.strip():
        catalog.warn(file, line, "document has no kind or metadata.name; skipped")
        return
    if not API_VERSION.match(f"apiVersion: {doc.get('apiVersion', '')}"):
        catalog.warn(file, line, f"{kind} {name}: apiVersion is not *backstage.io/*")
    if kind.lower() == "location":
        _follow(catalog, doc, line, file, chain)
        return
    if kind.lower() == "template":
        catalog.warn(file, line, f"Template {name} ignored (a template describes no system)")
        return
    namespace = meta.get("namespace") if isinstance(meta, MarkedMap) else None
    entity = Entity(kind.lower(), str(namespace or "default").lower(), name, doc, file, line)
    first = catalog.entities.get(entity.ref)
    if first is not None:
        catalog.warn(
            file, line, f"{kind} {name} already defined at {first.file}:{first.line}; ignored"
        )
        return
    catalog.entities[entity.ref] = entity


def _follow(
    catalog: Catalog, doc: MarkedMap, line: int, file: Path, chain: tuple[Path, ...]
) -> None:
    spec = doc.get("spec")
    if not isinstance(spec, MarkedMap):
        catalog.warn(file, line, "Location without spec; nothing followed")
        return
    targets: list[tuple[Any, int]] = []
    if "target" in spec:
        targets.append((spec["target"], spec.line_of("target")))
    listed = spec.get("targets")
    if isinstance(listed, MarkedList):
        targets.extend((t, listed.line_of(i)) for i, t in enumerate(listed))
    optional = spec.get("presence") == "optional"
    for target, at in targets:
        if not isinstance(target, str) or not target.strip():
            catalog.warn(file, at, f"Location target {target!r} is not a path")
        elif _REMOTE.match(target):
            catalog.warn(file, at, f"remote Location target {target} not followed")
        elif any(c in target for c in "*?["):
            found = sorted(p for p in file.parent.glob(target) if p.is_file())
            if not found and not optional:
                catalog.warn(file, at, f"Location target {target} matches no file")
            for match in found:
                _visit(catalog, match, chain, (file, at))
        elif (file.parent / target).is_file():
            _visit(catalog, file.parent / target, chain, (file, at))
        elif not optional:
            missing = file.parent / target
            catalog.warn(file, at, f"Location target {target} not found ({missing}); skipped")
