"""CODEOWNERS: rule parsing, GitHub's documented matching semantics, and owners_of."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.graph.importers import codeowners
from placet.graph.importers.codeowners import owners_of
from placet.graph.model import NodeKind, OwnershipRule, Provenance

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
BOUTIQUE = DATA / "online-boutique" / "CODEOWNERS"


def test_online_boutique_codeowners() -> None:
    result = codeowners.parse([BOUTIQUE], "boutique")
    (rule,) = result.ownership
    assert rule.pattern == "*"
    assert rule.owners == (
        "team:googlecloudplatform/devrel-flagship-app-maintainers",
        "user:yoshi-approver",
    )
    assert rule.provenance.line == 6
    assert rule.provenance.importer == "codeowners"
    assert rule.provenance.file == str(BOUTIQUE)
    assert owners_of("src/cartservice/src/Program.cs", result.ownership) == rule.owners
    assert owners_of("README.md", result.ownership) == rule.owners
    (team,) = result.nodes
    assert team.id == "team:googlecloudplatform/devrel-flagship-app-maintainers"
    assert team.kind is NodeKind.TEAM
    assert team.attributes["patterns"] == ["*"]
    assert result.edges == () and result.warnings == ()


def test_detect() -> None:
    assert codeowners.detect(BOUTIQUE, BOUTIQUE.read_text())
    assert not codeowners.detect(Path("OWNERS.txt"), BOUTIQUE.read_text())
    assert not codeowners.detect(Path("CODEOWNERS"), "# only comments\n\n")
    assert codeowners.detect(Path(".github/CODEOWNERS"), "docs/ docs@example.com\n")


# The rules GitHub documents for CODEOWNERS, one per documented case, in its order.
DOCUMENTED = """\
# default owners of everything
*       @global-owner1 @global-owner2
*.js    @js-owner #an inline comment
*.go docs@example.com
*.txt @octo-org/octocats
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/ @octocat
/apps/github
"""


@pytest.fixture(scope="module")
def documented(tmp_path_factory: pytest.TempPathFactory) -> tuple[OwnershipRule, ...]:
    path = tmp_path_factory.mktemp("repo") / "CODEOWNERS"
    path.write_text(DOCUMENTED)
    result = codeowners.parse([path], "docs")
    assert result.warnings == ()
    return result.ownership


GLOBAL = ("user:global-owner1", "user:global-owner2")


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("README.md", GLOBAL),
        ("web/static/app.js", ("user:js-owner",)),  # the inline comment is no owner
        ("cmd/main.go", ("user:docs@example.com",)),
        ("notes/todo.txt", ("team:octo-org/octocats",)),
        ("build/logs/today.log", ("user:octocat",)),  # **/logs comes later: last match wins
        ("build/output/a.bin", GLOBAL),
        ("docs/getting-started.md", ("user:doctocat",)),  # /docs/ comes after docs/*
        ("docs/build-app/troubleshooting.md", ("user:doctocat",)),
        ("lib/apps/x.py", ("user:octocat",)),  # apps/ at any depth
        ("apps/web/main.py", ("user:octocat",)),
        ("apps/github/main.py", ()),  # the last rule has no owners
        ("apps/github", ()),
        ("scripts/deploy.sh", ("user:doctocat", "user:octocat")),
        ("deeply/nested/logs/x.log", ("user:octocat",)),
        ("scripts/logs/y.log", ("user:octocat",)),
        ("./README.md", GLOBAL),
        ("/cmd/main.go", ("user:docs@example.com",)),
    ],
)
def test_documented_examples(
    documented: tuple[OwnershipRule, ...], path: str, owners: tuple[str, ...]
) -> None:
    assert owners_of(path, documented) == owners


def _rules(*lines: str) -> tuple[OwnershipRule, ...]:
    prov = Provenance("t", "codeowners", "CODEOWNERS", 1)
    rules = []
    for line in lines:
        pattern, *owners = line.split()
        rules.append(OwnershipRule(pattern, tuple(owners), prov))
    return tuple(rules)


def test_star_segment_does_not_reach_into_subdirectories() -> None:
    rules = _rules("* base", "docs/* docs")
    assert owners_of("docs/getting-started.md", rules) == ("docs",)
    assert owners_of("docs/build-app/troubleshooting.md", rules) == ("base",)
    assert owners_of("other/docs/a.md", rules) == ("base",)  # docs/* is anchored


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("*.js", ["a.js", "x/y/z.js"], ["a.jsx", "js"]),
        ("/README.md", ["README.md"], ["docs/README.md"]),
        ("README.md", ["README.md", "docs/README.md"], ["README.md.bak"]),
        ("apps/", ["apps/a", "x/apps/b/c"], ["apps", "myapps/a"]),
        ("/src/cart", ["src/cart", "src/cart/a.cs"], ["src/cartservice/a.cs", "x/src/cart"]),
        ("src/**/test", ["src/test/a", "src/x/y/test/b"], ["test/a", "lib/src/test/a"]),
        ("docs/**", ["docs/a", "docs/a/b/c"], ["docs", "x/docs/a"]),
        ("**/logs", ["logs/a", "a/b/logs/c"], ["logsx/a", "a/blogs/c"]),
        ("fil?.txt", ["file.txt", "a/fila.txt"], ["fi.txt", "filee.txt"]),
    ],
)
def test_pattern_semantics(pattern: str, matches: list[str], misses: list[str]) -> None:
    rules = _rules(f"{pattern} owner")
    for path in matches:
        assert owners_of(path, rules) == ("owner",), path
    for path in misses:
        assert owners_of(path, rules) == (), path


def test_comments_escapes_and_invalid_lines(tmp_path: Path) -> None:
    path = tmp_path / "CODEOWNERS"
    path.write_text(
        "# a comment\n"
        "\\#notes.md @alice\n"
        "#notes.md @bob\n"
        "   \n"
        "!vendor/ @carol\n"
        "[ab].py @dave\n"
        "*.rb @Erin notanowner @org/Ruby-Team erin@Example.com @Erin\n"
        "/ @frank\n"
        "my\\ notes.txt @gina\n"
    )
    result = codeowners.parse([path], "t")
    assert [r.pattern for r in result.ownership] == ["\\#notes.md", "*.rb", "my\\ notes.txt"]
    assert owners_of("#notes.md", result.ownership) == ("user:alice",)
    assert owners_of("docs/my notes.txt", result.ownership) == ("user:gina",)
    assert result.ownership[1].owners == (
        "user:erin",
        "team:org/ruby-team",
        "user:erin@example.com",
    )
    assert result.ownership[1].provenance.line == 7
    warnings = {w.line: w.message for w in result.warnings}
    assert set(warnings) == {5, 6, 7, 8}
    assert "negation" in warnings[5]
    assert "character ranges" in warnings[6]
    assert "'notanowner'" in warnings[7]
    assert "names no path" in warnings[8]
    assert [n.id for n in result.nodes] == ["team:org/ruby-team"]


def test_several_files_are_concatenated_with_a_warning(tmp_path: Path) -> None:
    first = tmp_path / "CODEOWNERS"
    first.write_text("* @a\n")
    (tmp_path / "docs").mkdir()
    second = tmp_path / "docs" / "CODEOWNERS"
    second.write_text("*.md @b\n")
    result = codeowners.parse([first, second], "t")
    assert owners_of("x.md", result.ownership) == ("user:b",)
    assert "GitHub uses only the first" in result.warnings[0].message


def test_owner_ids() -> None:
    assert codeowners.owner_id("@Octo-Org/Octocats") == "team:octo-org/octocats"
    assert codeowners.owner_id("@Hubot") == "user:hubot"
    assert codeowners.owner_id("Docs@Example.com") == "user:docs@example.com"
    assert codeowners.owner_id("@") is None
    assert codeowners.owner_id("plainword") is None


_segment = st.text(alphabet="abcxyz0189_-.", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)


@given(st.lists(_segment, min_size=1, max_size=5))
def test_last_rule_wins_for_every_path(segments: list[str]) -> None:
    path = "/".join(segments)
    rules = _rules(f"{segments[-1]} specific", "* everyone")
    assert owners_of(path, rules) == ("everyone",)
    assert owners_of(path, tuple(reversed(rules))) == ("specific",)
    assert owners_of(path, ()) == ()
