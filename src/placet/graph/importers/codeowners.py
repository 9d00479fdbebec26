"""CODEOWNERS -> ownership rules, and :func:`owners_of` to map a changed path to its owners.

CODEOWNERS names paths, not services, so this importer emits no path nodes: it puts the
ordered rules in :attr:`ImportResult.ownership` (owners as ids: ``@org/team`` ->
``team:org/team``, ``@user`` -> ``user:user``, ``a@b.c`` -> ``user:a@b.c``, all lowercase)
and one ``team`` node per team it names (``attributes["patterns"]``: what the team owns).

Matching follows GitHub's documented CODEOWNERS semantics (gitignore-like):

- blank lines and ``#`` comments are skipped; `` #`` after the pattern starts an inline
  comment; ``\\#`` (and any ``\\<char>``) escapes a character, e.g. a leading ``#``;
- a pattern with a ``/`` at the start or in the middle is anchored at the repository root,
  otherwise it matches at any depth; a trailing ``/`` matches a directory's contents only;
- ``*`` and ``?`` match within one path segment, ``**`` across segments (``**/logs``,
  ``a/**/b``, ``docs/**``);
- a pattern naming a directory owns everything under it, except when its last segment
  holds a ``*`` wildcard: ``docs/*`` owns ``docs/a.md`` but not ``docs/x/b.md`` (GitHub's
  documented behaviour);
- the LAST matching rule wins; a rule without owners leaves its paths unowned;
- ``!`` negation and ``[...]`` ranges are not supported by GitHub: such lines are skipped
  with a warning, like owners that are neither ``@name`` nor an email address.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from placet.graph.importers.yamllines import read_text
from placet.graph.model import (
    ImportResult,
    ImportWarning,
    NodeFact,
    NodeKind,
    OwnershipRule,
    Provenance,
    node_id,
)

NAME = "codeowners"

_USER = re.compile(r"^@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)$")
_TEAM = re.compile(r"^@([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OWNER_LINE = re.compile(r"^\s*[^#\s]\S*\s+(@\S+|[^@\s]+@[^@\s]+)", re.MULTILINE)


def detect(path: Path, text: str) -> bool:
    """A file named CODEOWNERS with at least one ``pattern owner`` line."""
    return path.name == "CODEOWNERS" and _OWNER_LINE.search(text) is not None


def parse(files: Sequence[Path], source: str) -> ImportResult:
    """The ordered rules of every CODEOWNERS file, plus a node per team named."""
    rules: list[OwnershipRule] = []
    warnings: list[ImportWarning] = []
    if len(files) > 1:
        listed = ", ".join(map(str, files))
        message = f"{len(files)} CODEOWNERS files ({listed}); their rules are concatenated in "
        message += "this order, but GitHub uses only the first of .github/, root, docs/"
        warnings.append(ImportWarning(str(files[0]), None, message))
    for file in files:
        text = read_text(file)
        for number, line in enumerate(text.splitlines(), 1):
            rule = _rule(line, Provenance(source, NAME, str(file), number), warnings)
            if rule is not None:
                rules.append(rule)
    teams: dict[str, list[OwnershipRule]] = {}
    for rule in rules:
        for owner in rule.owners:
            if owner.startswith("team:"):
                teams.setdefault(owner, []).append(rule)
    nodes = tuple(
        NodeFact(
            id=team,
            kind=NodeKind.TEAM,
            provenance=owned[0].provenance,
            name=team.removeprefix("team:"),
            attributes={"patterns": [r.pattern for r in owned]},
        )
        for team, owned in teams.items()
    )
    return ImportResult(
        importer=NAME,
        nodes=nodes,
        warnings=tuple(warnings),
        files=tuple(map(str, files)),
        ownership=tuple(rules),
    )


def owners_of(path: str, rules: Sequence[OwnershipRule]) -> tuple[str, ...]:
    """The owners of repository path ``path``: the last matching rule's, or () if none."""
    normal = path.strip().lstrip("/")
    while normal.startswith("./"):
        normal = normal[2:].lstrip("/")
    normal = normal.rstrip("/")
    for rule in reversed(rules):
        if pattern_regex(rule.pattern).match(normal):
            return rule.owners
    return ()


def owner_id(token: str) -> str | None:
    """``@org/team`` -> ``team:org/team``, ``@user`` -> ``user:user``, email -> ``user:<email>``."""
    if match := _TEAM.match(token):
        return node_id(NodeKind.TEAM, match[1])
    if match := _USER.match(token):
        return f"user:{match[1].lower()}"
    if _EMAIL.match(token):
        return f"user:{token.lower()}"
    return None


def _rule(line: str, prov: Provenance, warnings: list[ImportWarning]) -> OwnershipRule | None:
    tokens = _tokens(line)
    if not tokens:
        return None
    pattern, owners = tokens[0], []
    problem = _unsupported(pattern)
    if problem:
        warnings.append(ImportWarning(prov.file, prov.line, f"{pattern}: {problem}; line skipped"))
        return None
    for token in tokens[1:]:
        owner = owner_id(token)
        if owner is None:
            message = f"{pattern}: owner {token!r} is neither @user, @org/team nor an email"
            warnings.append(ImportWarning(prov.file, prov.line, message + "; ignored"))
        elif owner not in owners:
            owners.append(owner)
    return OwnershipRule(pattern, tuple(owners), prov)


def _tokens(line: str) -> list[str]:
    """Whitespace-separated tokens, honouring ``\\`` escapes and stopping at a comment."""
    tokens: list[str] = []
    current: list[str] = []
    chars = iter(line)
    for char in chars:
        if char == "\\":
            current.append(char + next(chars, ""))
        elif char.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        elif char == "#" and not current:
            break
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def _unsupported(pattern: str) -> str:
    unescaped = re.sub(r"\\.", "", pattern)
    if unescaped.startswith("!"):
        return "negation (!) is not supported in CODEOWNERS"
    if "[" in unescaped or "]" in unescaped:
        return "character ranges ([...]) are not supported in CODEOWNERS"
    if not unescaped.strip("/"):
        return "the pattern names no path"
    return ""


@functools.lru_cache(maxsize=4096)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression a CODEOWNERS pattern matches repository paths with."""
    anchored = pattern.startswith("/")
    body = pattern[1:] if anchored else pattern
    dir_only = body.endswith("/") and not body.endswith("\\/")
    body = body.rstrip("/") if dir_only else body
    anchored = anchored or "/" in re.sub(r"\\.", "", body)
    segments = body.split("/")
    regex, last_has_star = "", False
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:[^/]*/)*"
            continue
        converted, last_has_star = _segment(segment)
        regex += converted if last else converted + "/"
    prefix = "^" if anchored else "^(?:.*/)?"
    if dir_only:
        suffix = "/.*$"
    elif last_has_star and segments[-1] != "**":
        suffix = "$"
    else:
        suffix = "(?:/.*)?$"
    return re.compile(prefix + regex + suffix, re.DOTALL)


def _segment(segment: str) -> tuple[str, bool]:
    """One path segment as a regex, and whether it holds an unescaped ``*``."""
    out: list[str] = []
    star = False
    chars = iter(segment)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "*":
            star = True
            if not out or out[-1] != "[^/]*":
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return "".join(out), star
