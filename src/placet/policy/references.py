"""Which parts of the input document a bundle can read, so only those are sent to the engine.

Handing a document to rego-cpp costs about a microsecond per value, which for a full
proposal is most of an evaluation. Rego reaches the input only through the word
``input``, so scanning the code (comments and string literals blanked out) for
``input.a.b`` finds every subtree a policy can see; the engine gets just those
subtrees, whole. ``object.get(input, ["a", "b"], default)`` (or ``"a"``) reads
``input.a.b`` the same way: the leading string literals of the path name the subtree.
The scan errs towards sending more: ``input`` on its own anywhere else (``x := input``,
``input[k]``, ``import input``, ``with input as``) sends everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


def _scan(source: str) -> tuple[str, list[str | None]]:
    """``source`` with comments blanked and every string literal written ``""``, and the
    literals' values in order (None for a literal with an escape sequence: its value
    depends on the engine, so no path is read from it)."""
    out: list[str] = []
    literals: list[str | None] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "#":
            end = source.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif char == "`":
            end = source.find("`", i + 1)
            end = n if end < 0 else end + 1
            out.append('""')
            literals.append(source[i + 1 : end - 1])
            i = end
        elif char == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append('""')
            text = source[i + 1 : j]
            literals.append(None if "\\" in text else text)
            i = j + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), literals


def code_only(source: str) -> str:
    """``source`` with comments and the insides of string literals blanked out."""
    return _scan(source)[0]


# ``input`` as a whole word (not a field such as ``x.input``), then its dotted path.
_REFERENCE = re.compile(r"(?<![A-Za-z0-9_.])input(?![A-Za-z0-9_])((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")

Paths = tuple[tuple[str, ...], ...]


# ``object.get(`` just before a bare ``input``, and ``, <path>`` just after it: the path is
# one string literal or an array whose leading elements are string literals.
_GET_BEFORE = re.compile(r"(?<![A-Za-z0-9_.])object\.get\(\s*$")
_GET_AFTER = re.compile(
    r'\s*,\s*(?:(?P<key>"")(?=\s*,)|\[(?P<keys>\s*""(?:\s*,\s*"")*)(?=\s*[,\]]))'
)


def _object_get_path(
    code: str, literals: list[str | None], start: int, end: int
) -> tuple[str, ...] | None:
    """The path ``object.get(input, path, …)`` reads when the bare ``input`` at
    ``code[start:end]`` is its first argument; None when it is not, or the path is unknown."""
    if _GET_BEFORE.search(code, 0, start) is None:
        return None
    after = _GET_AFTER.match(code, end)
    if after is None:
        return None
    first = code.count('"', 0, after.start()) // 2  # the index of the path's first literal
    count = 1 if after.group("key") is not None else after.group("keys").count('""')
    path: list[str] = []
    for value in literals[first : first + count]:
        if value is None:
            break
        path.append(value)
    return tuple(path) or None


def input_paths(sources: Iterable[str]) -> Paths | None:
    """The dotted input paths the sources mention, outermost only and sorted; None means
    the sources may read all of the input."""
    paths: set[tuple[str, ...]] = set()
    for source in sources:
        code, literals = _scan(source)
        for match in _REFERENCE.finditer(code):
            path = tuple(match.group(1).split(".")[1:])
            if not path:
                got = _object_get_path(code, literals, match.start(), match.end())
                if got is None:
                    return None
                path = got
            paths.add(path)
    # Keep only the outermost paths: a kept subtree already holds everything beneath it.
    kept: list[tuple[str, ...]] = []
    for path in sorted(paths, key=lambda p: (len(p), p)):
        if not any(path[: len(outer)] == outer for outer in kept):
            kept.append(path)
    return tuple(sorted(kept))


def _tree(paths: Paths) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for segment in path[:-1]:
            node = node.setdefault(segment, {})
        node[path[-1]] = None  # None marks "this whole subtree"
    return root


def _prune(document: Any, tree: Mapping[str, Any]) -> Any:
    if not isinstance(document, Mapping):
        return document  # a path through a non-object: the policy sees this value whole
    kept: dict[str, Any] = {}
    for key, below in tree.items():
        if key in document:
            value = document[key]
            kept[key] = value if below is None else _prune(value, below)
    return kept


class Pruner:
    """Cuts an input document down to the subtrees at a bundle's input paths."""

    def __init__(self, paths: Paths | None) -> None:
        self.paths = paths
        self._tree = None if paths is None else _tree(paths)

    def __call__(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """The part of ``document`` the bundle can read (all of it when paths is None)."""
        if self._tree is None:
            return document
        pruned: Mapping[str, Any] = _prune(document, self._tree)
        return pruned
