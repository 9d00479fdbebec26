"""docs/people.md embeds the permission table exactly as the code declares it."""

from __future__ import annotations

from pathlib import Path

from placet.domain.permissions import PERMISSIONS, as_markdown

PEOPLE_MD = Path(__file__).resolve().parents[2] / "docs" / "people.md"
BEGIN, END = "<!-- permissions:begin -->\n", "<!-- permissions:end -->"


def test_people_md_table_matches_the_code() -> None:
    text = PEOPLE_MD.read_text()
    embedded = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert embedded == as_markdown(), (
        "docs/people.md's permission table differs from placet.domain.permissions: "
        "run `make docs` (it writes placet.domain.permissions.as_markdown() between the markers)"
    )


def test_the_markdown_has_one_row_per_endpoint() -> None:
    rows = [line for line in as_markdown().splitlines() if line.startswith("| `")]
    assert len(rows) == len(PERMISSIONS)
    assert "| `POST /v1/proposals/{proposal_id}/approve` |  | yes |" in as_markdown()
