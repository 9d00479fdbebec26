"""The System Graph service: imports per source, immutable versions, queries, assessments."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select

from placet.domain.canonical import digest_of
from placet.domain.errors import InputError, NotFound, PlacetError
from placet.domain.ids import new_id
from placet.domain.proposal import ProposalContent
from placet.graph.codec import result_from_json, result_to_json
from placet.graph.errors import GraphInputError
from placet.graph.importers import registry
from placet.graph.merge import merge
from placet.graph.model import ImportResult, OwnershipRule
from placet.graph.ownership import ownership_rules, owning
from placet.graph.queries import GraphIndex
from placet.graph.version import Graph
from placet.service.clock import rfc3339
from placet.service.context import Context
from placet.store.tables import graph_sources, graph_versions

Progress = Callable[[int, int], None]
MAX_UPLOAD_FILES = 20_000
BLAST_LISTED = 200  # nodes listed in an assessment; the counts and roll-ups cover all


class GraphIntegrityError(PlacetError):
    """The stored sources no longer merge to the newest version's digest: refuse to use it."""


@dataclass(frozen=True)
class Current:
    """The graph version new assessments use, merged and indexed once."""

    id: str
    digest: str
    created_at: str
    graph: Graph
    index: GraphIndex
    rules: tuple[OwnershipRule, ...]


class GraphService:
    """Imports replace one source's facts; every import that changes the graph is a version."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._current: Current | None = None

    # ---- importing -----------------------------------------------------------------

    def import_paths(
        self,
        paths: Sequence[Path],
        fmt: str | None = None,
        source: str | None = None,
        by: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Import files and directories as one source; return what changed."""
        if not paths:
            raise InputError("paths", "name at least one file or directory")
        files = registry.walk(paths)
        if not files:
            raise InputError("paths", "no files found")
        name = source or ",".join(str(p.resolve()) for p in paths)
        plan = registry.plan(files, fmt, progress)
        results = registry.run(plan, name)
        return self._store(name, results, [str(f) for f in files], by)

    def import_files(
        self,
        files: Sequence[tuple[str, bytes]],
        fmt: str | None,
        source: str,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Import uploaded files (relative path, content) as one source, e.g. over HTTP."""
        if not files:
            raise InputError("files", "upload at least one file")
        if len(files) > MAX_UPLOAD_FILES:
            raise InputError("files", f"at most {MAX_UPLOAD_FILES} files per import")
        with tempfile.TemporaryDirectory(prefix="placet-import-") as tmp:
            root = Path(tmp)
            for i, (relative, content) in enumerate(files):
                pure = PurePosixPath(relative)
                if pure.is_absolute() or ".." in pure.parts or not pure.parts:
                    raise InputError(
                        f"files[{i}].path", "must be a relative path inside the upload"
                    )
                target = root.joinpath(*pure.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            files_in = registry.walk([root])
            try:
                plan = registry.plan(files_in, fmt)
                results = registry.run(plan, source)
            except GraphInputError as exc:  # name the uploaded path, not the temp dir
                raise GraphInputError(
                    exc.file.removeprefix(str(root) + "/"), exc.problem, exc.line
                ) from None
            results = [_relative(r, root) for r in results]
            return self._store(source, results, [f for f, _ in files], by)

    def _store(
        self, name: str, results: list[ImportResult], files: list[str], by: str | None
    ) -> dict[str, Any]:
        facts = [result_to_json(r) for r in results]
        digest = digest_of(facts)
        now = rfc3339(self.ctx.clock())
        with self.ctx.write() as conn:
            conn.execute(graph_sources.delete().where(graph_sources.c.name == name))
            conn.execute(
                graph_sources.insert(),
                {
                    "name": name,
                    "digest": digest,
                    "facts": facts,
                    "files": files,
                    "imported_at": now,
                    "imported_by": by,
                },
            )
            rows = conn.execute(
                select(graph_sources.c.name, graph_sources.c.digest).order_by(graph_sources.c.name)
            ).all()
            # This source's facts are in hand; only the others are read back and decoded.
            others = conn.execute(
                select(graph_sources.c.name, graph_sources.c.facts).where(
                    graph_sources.c.name != name
                )
            ).all()
            by_source = {r.name: [result_from_json(f) for f in r.facts] for r in others}
            by_source[name] = results
            graph = merge(res for source in sorted(by_source) for res in by_source[source])
            latest = conn.execute(
                select(graph_versions.c.id, graph_versions.c.digest)
                .order_by(graph_versions.c.id.desc())
                .limit(1)
            ).first()
            created = latest is None or latest.digest != graph.digest
            version_id = new_id() if latest is None or created else str(latest.id)
            if created:
                document = graph.as_document()
                conn.execute(
                    graph_versions.insert(),
                    {
                        "id": version_id,
                        "digest": graph.digest,
                        "sources": {r.name: r.digest for r in rows},
                        "document": document,
                        "node_count": len(document["nodes"]),
                        "edge_count": len(document["edges"]),
                        "created_at": now,
                    },
                )
        warnings = [str(w) for r in results for w in r.warnings]
        return {
            "source": name,
            "version": {"id": version_id, "digest": graph.digest, "created": created},
            "files": len(files),
            "importers": sorted({r.importer for r in results if r.importer != "none"}),
            "nodes": len(graph.nodes),
            "edges": len(graph.edges),
            "conflicts": len(graph.conflicts),
            "warnings": warnings,
        }

    # ---- the current version -------------------------------------------------------

    def current(self) -> Current | None:
        """The newest version, merged from the stored sources and indexed (cached)."""
        with self.ctx.read() as conn:
            latest = conn.execute(
                select(
                    graph_versions.c.id,
                    graph_versions.c.digest,
                    graph_versions.c.created_at,
                    graph_versions.c.sources,
                )
                .order_by(graph_versions.c.id.desc())
                .limit(1)
            ).first()
            if latest is None:
                return None
            cached = self._current
            if cached is not None and cached.id == latest.id:
                return cached
            rows = conn.execute(select(graph_sources).order_by(graph_sources.c.name)).all()
        with self._lock:
            if self._current is not None and self._current.id == latest.id:
                return self._current
            results = [result_from_json(f) for r in rows for f in r.facts]
            graph = merge(results)
            if graph.digest != latest.digest:
                raise GraphIntegrityError(
                    f"graph sources do not merge to version {latest.id} "
                    f"({graph.digest} != {latest.digest})"
                )
            self._current = Current(
                latest.id,
                latest.digest,
                latest.created_at,
                graph,
                GraphIndex(graph),
                ownership_rules(results),
            )
            return self._current

    def _require(self) -> Current:
        current = self.current()
        if current is None:
            raise NotFound("graph", "(nothing imported yet: run `placet graph import`)")
        return current

    # ---- queries -------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        current = self.current()
        with self.ctx.read() as conn:
            sources = conn.execute(
                select(
                    graph_sources.c.name,
                    graph_sources.c.digest,
                    graph_sources.c.imported_at,
                    graph_sources.c.imported_by,
                ).order_by(graph_sources.c.name)
            ).all()
        return {
            "version": _version(current),
            "nodes": len(current.graph.nodes) if current else 0,
            "edges": len(current.graph.edges) if current else 0,
            "conflicts": len(current.graph.conflicts) if current else 0,
            "sources": [dict(r._mapping) for r in sources],
        }

    def versions(self) -> list[dict[str, Any]]:
        with self.ctx.read() as conn:
            rows = conn.execute(
                select(
                    graph_versions.c.id,
                    graph_versions.c.digest,
                    graph_versions.c.sources,
                    graph_versions.c.node_count,
                    graph_versions.c.edge_count,
                    graph_versions.c.created_at,
                ).order_by(graph_versions.c.id.desc())
            ).all()
        return [dict(r._mapping) for r in rows]

    def show(self, fmt: str = "json") -> Any:
        from placet.graph import render

        graph = self._require().graph
        if fmt == "json":
            return graph.as_document()
        if fmt == "dot":
            return render.to_dot(graph)
        if fmt == "mermaid":
            return render.to_mermaid(graph)
        raise InputError("format", f"must be json, dot or mermaid, not {fmt!r}")

    def node(self, node_id: str) -> dict[str, Any]:
        current = self._require()
        found = current.graph.nodes.get(node_id)
        if found is None:
            raise NotFound("graph node", node_id)
        edges = [e.as_dict() for e in current.graph.edges if node_id in (e.source, e.target)]
        return {"version": _version(current), **found.as_dict(), "edges": edges}

    def conflicts(self) -> dict[str, Any]:
        current = self._require()
        return {
            "version": _version(current),
            "conflicts": [c.as_dict() for c in current.graph.conflicts],
        }

    def blast(
        self, nodes: Sequence[str], depth: int | None = None, kinds: Sequence[str] | None = None
    ) -> dict[str, Any]:
        if not nodes:
            raise InputError("node", "name at least one node")
        if depth is not None and depth < 0:
            raise InputError("depth", "must be 0 (the targets only) or more")
        current = self._require()
        result = current.index.blast(list(nodes), depth=depth, kinds=_edge_kinds(kinds))
        return {**result.as_dict(), "version": current.digest, "version_id": current.id}

    def dependencies(self, node: str, depth: int | None = None) -> dict[str, Any]:
        """What ``node`` depends on (forward): a change to any of these affects it."""
        if depth is not None and depth < 0:
            raise InputError("depth", "must be 0 (the node only) or more")
        current = self._require()
        if node not in current.graph.nodes:
            raise NotFound("graph node", node)
        result = current.index.dependencies(node, depth=depth)
        return {**result.as_dict(), "version": current.digest, "version_id": current.id}

    def owners(self, paths: Sequence[str]) -> dict[str, Any]:
        """Changed file paths to the nodes whose source paths hold them, and their owners."""
        if not paths:
            raise InputError("path", "name at least one file path")
        current = self._require()
        return {"version": current.digest, **owning(current.graph, current.rules, paths)}

    def reach(self, node: str) -> dict[str, Any]:
        current = self._require()
        if node not in current.graph.nodes:
            raise NotFound("graph node", node)
        return {**current.index.reach(node).as_dict(), "version": current.digest}

    # ---- assessment ----------------------------------------------------------------

    def assess(self, content: ProposalContent) -> dict[str, Any]:
        """Targets, blast radius and reachability against the current version."""
        current = self.current()
        targets = list(content.targets)
        if current is None:
            return {
                "graph_version": None,
                "targets": [{"id": t, "known": False} for t in targets],
                "unknown_targets": targets,
                "blast_radius": {
                    "count": 0,
                    "nodes": [],
                    "tags": [],
                    "owners": [],
                    "data_classes": [],
                    "revenue_path": False,
                },
                "internet_reachable": [],
            }
        graph, index = current.graph, current.index
        known = [t for t in targets if t in graph.nodes]
        described = []
        reachable = []
        for t in targets:
            if t not in graph.nodes:
                described.append({"id": t, "known": False})
                continue
            reach = index.reach(t).as_dict()
            if reach["reachable"]:
                reachable.append(t)
            node = graph.nodes[t]
            described.append(
                {
                    "id": t,
                    "known": True,
                    "kind": node.kind.value,
                    "owners": list(node.owners),
                    "tier": node.tier,
                    "tags": list(node.tags),
                    "reach": reach,
                }
            )
        empty = {
            "count": 0,
            "nodes": [],
            "tags": [],
            "owners": [],
            "data_classes": [],
            "revenue_path": False,
        }
        # Only the nearest BLAST_LISTED nodes get their paths built; counts and roll-ups
        # cover the whole radius.
        blast: dict[str, Any] = index.blast(known).as_dict(limit=BLAST_LISTED) if known else empty
        return {
            "graph_version": {"id": current.id, "digest": current.digest},
            "targets": described,
            "unknown_targets": [t for t in targets if t not in graph.nodes],
            "blast_radius": {
                "count": int(blast["count"]),
                "nodes": blast["nodes"],
                "tags": blast.get("tags", []),
                "owners": blast.get("owners", []),
                "data_classes": blast.get("data_classes", []),
                "revenue_path": bool(blast.get("revenue_path", False)),
            },
            "internet_reachable": reachable,
        }


def _version(current: Current | None) -> dict[str, Any] | None:
    if current is None:
        return None
    return {"id": current.id, "digest": current.digest, "created_at": current.created_at}


def _edge_kinds(kinds: Sequence[str] | None) -> set[Any] | None:
    from placet.graph.model import EdgeKind

    if not kinds:
        return None
    try:
        return {EdgeKind(k) for k in kinds}
    except ValueError:
        known = ", ".join(k.value for k in EdgeKind)
        raise InputError("kind", f"unknown edge kind (known: {known})") from None


def _relative(result: ImportResult, root: Path) -> ImportResult:
    """Provenance of uploaded files names their path inside the upload, not the temp dir."""
    return result_from_json(_strip(result_to_json(result), str(root) + "/"))


def _strip(value: Any, prefix: str) -> Any:
    if isinstance(value, str):
        return value.removeprefix(prefix)
    if isinstance(value, list):
        return [_strip(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: _strip(v, prefix) for k, v in value.items()}
    return value
