"""Import results to and from JSON, so each source's facts can be stored and re-merged."""

from __future__ import annotations

from typing import Any

from placet.graph.model import (
    Coverage,
    Direction,
    EdgeFact,
    EdgeKind,
    ImportResult,
    ImportWarning,
    NodeFact,
    NodeKind,
    Provenance,
)


def _prov(p: Provenance) -> list[Any]:
    return [p.source, p.importer, p.file, p.line]


def _unprov(v: list[Any]) -> Provenance:
    return Provenance(v[0], v[1], v[2], v[3])


def result_to_json(result: ImportResult) -> dict[str, Any]:
    """A JSON-able dict holding every fact of ``result``."""
    out: dict[str, Any] = {
        "importer": result.importer,
        "files": list(result.files),
        "nodes": [
            {
                "id": n.id,
                "kind": n.kind.value,
                "provenance": _prov(n.provenance),
                "name": n.name,
                "owner": n.owner,
                "tier": n.tier,
                "tags": list(n.tags),
                "source_paths": list(n.source_paths),
                "attributes": dict(n.attributes),
            }
            for n in result.nodes
        ],
        "edges": [
            {
                "source": e.source,
                "target": e.target,
                "kind": e.kind.value,
                "provenance": _prov(e.provenance),
                "attributes": dict(e.attributes),
            }
            for e in result.edges
        ],
        "coverage": [
            {
                "node": c.node,
                "kind": c.kind.value,
                "direction": c.direction.value,
                "provenance": _prov(c.provenance),
            }
            for c in result.coverage
        ],
        "warnings": [
            {"file": w.file, "line": w.line, "message": w.message} for w in result.warnings
        ],
    }
    ownership = getattr(result, "ownership", ())
    if ownership:
        out["ownership"] = [
            {"pattern": r.pattern, "owners": list(r.owners), "provenance": _prov(r.provenance)}
            for r in ownership
        ]
    return out


def result_from_json(data: dict[str, Any]) -> ImportResult:
    """The ImportResult that :func:`result_to_json` wrote."""
    extra: dict[str, Any] = {}
    if data.get("ownership"):
        from placet.graph.model import OwnershipRule

        extra["ownership"] = tuple(
            OwnershipRule(r["pattern"], tuple(r["owners"]), _unprov(r["provenance"]))
            for r in data["ownership"]
        )
    return ImportResult(
        importer=data["importer"],
        files=tuple(data.get("files", ())),
        nodes=tuple(
            NodeFact(
                id=n["id"],
                kind=NodeKind(n["kind"]),
                provenance=_unprov(n["provenance"]),
                name=n["name"],
                owner=n["owner"],
                tier=n["tier"],
                tags=tuple(n["tags"]),
                source_paths=tuple(n["source_paths"]),
                attributes=n["attributes"],
            )
            for n in data["nodes"]
        ),
        edges=tuple(
            EdgeFact(
                source=e["source"],
                target=e["target"],
                kind=EdgeKind(e["kind"]),
                provenance=_unprov(e["provenance"]),
                attributes=e["attributes"],
            )
            for e in data["edges"]
        ),
        coverage=tuple(
            Coverage(
                node=c["node"],
                kind=EdgeKind(c["kind"]),
                direction=Direction(c["direction"]),
                provenance=_unprov(c["provenance"]),
            )
            for c in data["coverage"]
        ),
        warnings=tuple(ImportWarning(w["file"], w["line"], w["message"]) for w in data["warnings"]),
        **extra,
    )
