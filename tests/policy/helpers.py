"""Helpers for policy tests: Rego snippets, bundles written as real files, and inputs
with a chosen assessment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from placet.policy import build_input, sample_input

HEADER = "package placet\n\nimport rego.v1\n\n"


def write_files(directory: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``{relative path: content}`` under ``directory`` and return it."""
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


def decision_rule(body: str, extra: str = "") -> str:
    """A one-file policy whose ``decision`` is ``body`` (a Rego term), plus ``extra`` rules."""
    return f"{HEADER}{extra}\ndecision := {body}\n"


def assessed(
    kind: str = "restart",
    environment: str = "staging",
    *,
    unknown: Sequence[str] = (),
    revenue_path: bool = False,
    data_classes: Sequence[str] = (),
    count: int | None = None,
) -> dict[str, Any]:
    """The sample input with its assessment changed: ``unknown`` targets (added to the
    proposal's targets and described as not in the graph), a revenue path, data classes
    and a node count in the blast radius. Built through ``build_input``, so checked."""
    document = sample_input(kind=kind, environment=environment)
    proposal, assessment = document["proposal"], dict(document["assessment"])
    targets = [*proposal["targets"], *(t for t in unknown if t not in proposal["targets"])]
    known = [t for t in assessment["targets"] if t["id"] not in unknown]
    assessment["targets"] = known + [{"id": t, "known": False} for t in unknown]
    assessment["unknown_targets"] = list(unknown)
    radius = dict(assessment["blast_radius"])
    radius["revenue_path"] = revenue_path
    radius["data_classes"] = list(data_classes)
    if count is not None:
        radius["count"] = count
    assessment["blast_radius"] = radius
    return rebuild(document, targets=targets, assessment=assessment)


def rebuild(
    document: Mapping[str, Any],
    *,
    targets: Sequence[str] | None = None,
    assessment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``document`` built afresh by ``build_input`` with other targets and assessment."""
    proposal = document["proposal"]
    agent = proposal["agent"]
    content = ProposalContent(
        agent=agent["id"],
        kind=proposal["kind"],
        targets=tuple(proposal["targets"] if targets is None else targets),
        parameters=proposal["parameters"],
        environment=proposal["environment"],
        intent=proposal["intent"],
        verify=proposal["verify"],
        scope=tuple(proposal["scope"]),
    )
    principal = Principal(
        id=agent["id"],
        name=agent["name"],
        kind=PrincipalKind.AGENT,
        owner=agent["owner"],
        teams=tuple(agent["teams"]),
        roles=tuple(agent["roles"]),
    )
    return build_input(
        proposal_id=proposal["id"],
        content=content,
        agent=principal,
        assessment=document["assessment"] if assessment is None else assessment,
        now=datetime.fromisoformat(document["now"].replace("Z", "+00:00")),
    )


def library_files(*, tests: bool = False) -> dict[str, bytes]:
    """The shipped library's files (``{relative path: bytes}``), its tests only if asked."""
    from placet.policy.bundle import default_bundle_files, read_rego_files

    return read_rego_files(default_bundle_files(), "default", tests=tests)


def library_with(extra: Mapping[str, str]) -> dict[str, str | bytes]:
    """The shipped library's policy files plus ``extra`` files."""
    files: dict[str, str | bytes] = dict(library_files())
    files.update(extra)
    return files
