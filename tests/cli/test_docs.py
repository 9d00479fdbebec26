"""docs/cli.md is generated from --help and must match the CLI exactly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from placet.cli import docgen

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"

# The CLI line of DESIGN.md's "Interfaces" section, verbatim: the stable command names.
DESIGN_CLI = (
    "`placet serve`, `placet demo`, `placet init`, `placet graph import|show|blast|reach`, "
    "`placet propose`, `placet approve`, `placet deny`, `placet status`, "
    "`placet evidence export`, `placet verify`, `placet policy test|eval`, "
    "`placet runner`, `placet principal add|list|token`."
)


def design_commands(line: str) -> list[str]:
    """Expand ``placet graph import|show`` into ``placet graph import``, ``placet graph show``."""
    names: list[str] = []
    for item in re.findall(r"`([^`]+)`", line):
        *head, last = item.split()
        names.extend(" ".join([*head, alternative]) for alternative in last.split("|"))
    return names


def test_design_list_expands_alternatives() -> None:
    names = design_commands(DESIGN_CLI)
    assert "placet graph blast" in names
    assert "placet principal token" in names
    assert len(names) == len(set(names)) == 19


def test_cli_md_matches_help() -> None:
    assert CLI_MD.is_file(), "docs/cli.md is missing: run `make docs`"
    assert CLI_MD.read_text() == docgen.render(), (
        "docs/cli.md differs from the CLI's --help: run `make docs` and commit the result"
    )


def test_every_design_command_in_the_app_is_documented() -> None:
    existing = set(docgen.command_names())
    documented = CLI_MD.read_text()
    wanted = [name for name in design_commands(DESIGN_CLI) if name in existing]
    # The control plane's spine is there, so this check is not vacuous.
    assert {"placet serve", "placet propose", "placet verify", "placet principal add"} <= set(
        wanted
    )
    for name in wanted:
        assert f"\n## {name}\n" in documented or f"\n### {name}\n" in documented, (
            f"{name} has no section in docs/cli.md: run `make docs`"
        )


def test_every_app_command_has_a_section_with_its_usage() -> None:
    text = docgen.render()
    for section in docgen.sections():
        assert f"Usage: {section.title} " in section.help
        assert f"# {section.title}\n\n```text\nUsage: {section.title}" in text


@pytest.mark.parametrize("columns", ["40", "250"])
def test_render_ignores_terminal_width_and_environment(
    monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    baseline = docgen.render()
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setenv("PLACET_SERVER", "http://elsewhere.example")
    monkeypatch.setenv("PLACET_DATA_DIR", "/nonexistent")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert docgen.render() == baseline


def test_help_is_wrapped_at_the_fixed_width() -> None:
    for section in docgen.sections():
        for line in section.help.splitlines():
            assert len(line) <= docgen.WIDTH, f"{section.title}: {line!r}"


def test_module_writes_and_checks_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "cli.md"
    command = [sys.executable, "-m", "placet.cli.docgen"]
    written = subprocess.run(
        [*command, str(target)], capture_output=True, text=True, check=False, timeout=120
    )
    assert written.returncode == 0, written.stderr
    assert target.read_text() == docgen.render()

    fresh = subprocess.run(
        [*command, "--check", str(target)], capture_output=True, text=True, check=False
    )
    assert fresh.returncode == 0, fresh.stderr

    target.write_text(target.read_text().replace("Usage: placet serve", "Usage: placet srv"))
    stale = subprocess.run(
        [*command, "--check", str(target)], capture_output=True, text=True, check=False
    )
    assert stale.returncode == 1
    assert "run `make docs`" in stale.stderr
