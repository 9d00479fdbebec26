"""docs/policy.md stays true: its example runs as shown, and its tables match the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from placet.policy import sample_input
from placet.policy.bundle import default_bundle_files

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
FENCE = re.compile(r"<!-- (example-[a-z]+)(?:: (\S+))? -->\n```[a-z]*\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(DOC.read_text())]


def test_the_custom_bundle_example_prints_what_the_page_says(tmp_path: Path) -> None:
    blocks = _blocks()
    files = [(path, text) for kind, path, text in blocks if kind == "example-file"]
    runs = [text for kind, _, text in blocks if kind == "example-run"]
    outputs = [text for kind, _, text in blocks if kind == "example-output"]
    assert files and len(runs) == 1 and len(outputs) == 1
    for relative, text in files:
        assert relative is not None
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    result = subprocess.run(
        [sys.executable, "-c", runs[0]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == outputs[0]


def test_the_input_example_is_the_sample_input() -> None:
    text = DOC.read_text()
    section = text.split("## The input document", 1)[1]
    example = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    assert example == sample_input()


def test_the_field_table_lists_every_input_field() -> None:
    section = DOC.read_text().split("## The input document", 1)[1].split("## The decision", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.MULTILINE))
    document = sample_input()
    fields = {"now"}
    fields |= {f"proposal.{key}" for key in document["proposal"]}
    fields |= {f"assessment.{key}" for key in document["assessment"]}
    assert listed == fields


def test_the_quoted_default_rules_are_the_real_ones() -> None:
    section = DOC.read_text().split("## The default bundle", 1)[1]
    quoted = section.split("```rego\n", 1)[1].split("```", 1)[0]
    source = default_bundle_files().joinpath("placet.rego").read_text()
    for paragraph in quoted.strip().split("\n\n"):
        assert paragraph in source
