"""Runs the CLI walk-through in docs/approvals.md, command by command, as a user would.

Each ``$`` line of a ``console`` block is a command (``>`` lines continue it); the lines
under it must appear in its output, in order. An expected output starting with
``error:`` means the command must fail with exit status 2; any other, exit status 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "approvals.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 2 if self.expected and self.expected[0].startswith("error:") else 0


def steps(text: str) -> list[Step]:
    """The commands of every console block with the output each must show."""
    found: list[Step] = []
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append(Step(line[2:]))
            elif line.startswith(">") and found:
                found[-1].command += "\n" + line[2:]
            elif line.strip() and found:
                found[-1].expected.append(line.strip())
    return found


def test_the_doc_has_a_walkthrough() -> None:
    parsed = steps(DOC.read_text())
    assert len(parsed) > 20
    assert sum(1 for s in parsed if s.exit_status == 2) >= 2


@pytest.mark.timeout(300)
def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    parsed = steps(DOC.read_text())
    results = tmp_path / "results"
    results.mkdir()
    script = ["set -u"]
    for index, step in enumerate(parsed):
        script.append(f"{{ {step.command}\n}} > {results}/{index}.out 2>&1")
        script.append(f"echo $? > {results}/{index}.rc")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for name in ("PLACET_DATA_DIR", "PLACET_SERVER", "PLACET_TOKEN", "PLACET_POLICY_DIR"):
        env.pop(name, None)
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env, check=True, timeout=280)
    for index, step in enumerate(parsed):
        output = (results / f"{index}.out").read_text()
        status = int((results / f"{index}.rc").read_text())
        where = f"step {index}: $ {step.command.splitlines()[0]}\n--- output:\n{output}"
        assert status == step.exit_status, (
            f"exit status {status}, wanted {step.exit_status}; {where}"
        )
        position = 0
        for expected in step.expected:
            found = output.find(expected, position)
            assert found >= 0, f"missing {expected!r} (in order); {where}"
            position = found + len(expected)
