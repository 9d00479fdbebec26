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


def test_the_quoted_default_rules_are_the_real_ones() -> None:
    section = DOC.read_text().split("## The default bundle", 1)[1]
    quoted = section.split("```rego\n", 1)[1].split("```", 1)[0]
    source = default_bundle_files().joinpath("placet.rego").read_text()
    for paragraph in quoted.strip().split("\n\n"):
        assert paragraph in source
