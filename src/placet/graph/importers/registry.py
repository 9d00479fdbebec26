"""The declared importers, format detection from content, and walking paths to import.

An importer is a module in ``graph/importers/`` with ``NAME: str``,
``detect(path: Path, text: str) -> bool`` (does this file look like mine?) and
``parse(files: Sequence[Path], source: str) -> ImportResult``. It is declared once in
:data:`IMPORTERS`; nothing else needs to know it exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from placet.graph.errors import GraphInputError
from placet.graph.model import ImportResult, ImportWarning

# Order matters for detection: the first importer that claims a file gets it.
IMPORTER_MODULES = (
    "overlay",
    "backstage",
    "kubernetes",
    "compose",
    "otel",
    "codeowners",
    "github_actions",
)
MAX_FILE_BYTES = 32 * 1024 * 1024
_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv"}


def importers() -> dict[str, ModuleType]:
    """Importer modules by NAME, in detection order."""
    found = {}
    for module_name in IMPORTER_MODULES:
        module = importlib.import_module(f"placet.graph.importers.{module_name}")
        found[module.NAME] = module
    return found


@dataclass(frozen=True, slots=True)
class Plan:
    """Which importer takes which files, and the files nobody claimed."""

    by_importer: dict[str, list[Path]]
    unclaimed: list[Path]


def walk(paths: Sequence[Path]) -> list[Path]:
    """Every regular file under ``paths`` (sorted, skipping VCS and build directories)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and not (_SKIP_DIRS & set(item.parts)):
                    files.append(item)
        elif path.is_file():
            files.append(path)
        else:
            raise GraphInputError(str(path), "no such file or directory")
    return files


def plan(
    files: Sequence[Path],
    fmt: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """Assign each file to the importer named ``fmt``, or to the first that detects it."""
    available = importers()
    if fmt is not None and fmt not in available:
        raise GraphInputError("--format", f"unknown format {fmt!r} (known: {', '.join(available)})")
    by_importer: dict[str, list[Path]] = {}
    unclaimed: list[Path] = []
    for done, file in enumerate(files, 1):
        if fmt is not None:
            by_importer.setdefault(fmt, []).append(file)
        else:
            text = _read_text(file)
            owner = next(
                (n for n, m in available.items() if text is not None and m.detect(file, text)), None
            )
            if owner is None:
                unclaimed.append(file)
            else:
                by_importer.setdefault(owner, []).append(file)
        if progress is not None:
            progress(done, len(files))
    return Plan(by_importer, unclaimed)


def _read_text(file: Path) -> str | None:
    if file.stat().st_size > MAX_FILE_BYTES:
        return None
    try:
        return file.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def run(plan_: Plan, source: str) -> list[ImportResult]:
    """Parse every claimed file; unclaimed files become warnings, not silence."""
    available = importers()
    results = [available[name].parse(files, source) for name, files in plan_.by_importer.items()]
    if plan_.unclaimed:
        results.append(
            ImportResult(
                importer="none",
                warnings=tuple(
                    ImportWarning(str(f), None, "no importer recognised this file")
                    for f in plan_.unclaimed
                ),
            )
        )
    return results
