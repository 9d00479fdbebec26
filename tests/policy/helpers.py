"""Helpers for policy tests: Rego snippets and bundles written as real files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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
