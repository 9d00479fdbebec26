"""docs/policy.md stays true: its examples run as shown, and its tables match the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from placet.policy import sample_input
from placet.policy.bundle import default_bundle_files
from placet.policy.testing import run_tests

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
FENCE = re.compile(r"<!-- (example-[a-z]+)(?:: (\S+))? -->\n```[a-z]*\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(DOC.read_text())]


def test_the_examples_print_what_the_page_says(tmp_path: Path) -> None:
    # Every example-file is written first; each example-run then prints the example-output
    # that follows it.
    blocks = _blocks()
    files = [(path, text) for kind, path, text in blocks if kind == "example-file"]
    runs = [text for kind, _, text in blocks if kind == "example-run"]
    outputs = [text for kind, _, text in blocks if kind == "example-output"]
    assert files and len(runs) == len(outputs) == 2
    order = [kind for kind, _, _ in blocks if kind != "example-file"]
    assert order == ["example-run", "example-output"] * len(runs)
    for relative, text in files:
        assert relative is not None
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for run, output in zip(runs, outputs, strict=True):
        result = subprocess.run(
            [sys.executable, "-c", run],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == output


def test_the_input_example_is_the_sample_input() -> None:
    text = DOC.read_text()
    section = text.split("## The input document", 1)[1]
    example = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    assert example == sample_input()


def _flatten(value: Any, prefix: str) -> set[str]:
    """Dotted names of every field under ``value``; ``[]`` stands for a list of objects."""
    if isinstance(value, dict):
        return {n for key, item in value.items() for n in _flatten(item, f"{prefix}.{key}")}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _flatten(value[0], f"{prefix}[]")
    return {prefix.lstrip(".")}


def _table(section: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", section, re.MULTILINE))


def test_the_field_table_lists_every_input_field() -> None:
    section = DOC.read_text().split("## The input document", 1)[1].split("### The assessment", 1)[0]
    document = sample_input()
    fields = {"now"}
    fields |= {f"proposal.{key}" for key in document["proposal"]}
    fields |= {f"assessment.{key}" for key in document["assessment"]}
    assert _table(section) == fields


def test_the_assessment_table_lists_every_assessment_field() -> None:
    section = DOC.read_text().split("### The assessment", 1)[1].split("## The decision", 1)[0]
    fields = _flatten(sample_input()["assessment"], "")
    assert "blast_radius.data_classes" in fields
    assert "targets[].reach.entry_point" in fields
    assert _table(section) == fields


def test_the_library_table_names_real_files_and_constants() -> None:
    section = DOC.read_text().split("## The default bundle", 1)[1].split("## Testing", 1)[0]
    root = default_bundle_files()
    sources = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".rego")
    }
    rows = re.findall(r"^\| `([a-z_]+\.rego)` \|(.*)$", section, re.MULTILINE)
    assert {name for name, _ in rows} == {n for n in sources if not n.endswith("_test.rego")}
    for name, rest in rows:
        constants = rest.split("|")[2]
        for constant in re.findall(r"`([a-z_]+)`", constants):
            if constant in ("public", "internal") or constant.endswith("_test"):
                continue
            assert f"\n{constant} :=" in sources[name], (name, constant)


def test_the_test_example_passes_against_the_library(tmp_path: Path) -> None:
    section = DOC.read_text().split("## Testing a bundle", 1)[1]
    example = section.split("```rego\n", 1)[1].split("```", 1)[0]
    root = default_bundle_files()
    for entry in root.iterdir():
        if entry.name.endswith(".rego") and not entry.name.endswith("_test.rego"):
            (tmp_path / entry.name).write_text(entry.read_text(encoding="utf-8"))
    (tmp_path / "doc_test.rego").write_text("package placet\n\nimport rego.v1\n\n" + example)
    report = run_tests(tmp_path)
    assert [(r.name, r.outcome) for r in report.results] == [
        ("test_production_needs_one_approval_from_any_approver", "pass")
    ]
