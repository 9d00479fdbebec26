"""Which parts of the input document a bundle can read, so only those are sent to the engine.

Handing a document to rego-cpp costs about a microsecond per value, which for a full
proposal is most of an evaluation. Rego reaches the input only through the word
``input``, so scanning the code (comments and string literals blanked out) for
``input.a.b`` finds every subtree a policy can see; the engine gets just those
subtrees, whole. The scan errs towards sending more: ``input`` on its own
(``x := input``, ``input[k]``, ``import input``, ``with input as``) sends everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any


def code_only(source: str) -> str:
    """``source`` with comments and the insides of string literals blanked out."""
    out: list[str] = []
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
            i = end
        elif char == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append('""')
            i = j + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


# ``input`` as a whole word (not a field such as ``x.input``), then its dotted path.
_REFERENCE = re.compile(r"(?<![A-Za-z0-9_.])input(?![A-Za-z0-9_])((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")

Paths = tuple[tuple[str, ...], ...]


def input_paths(sources: Iterable[str]) -> Paths | None:
    """The dotted input paths the sources mention, outermost only and sorted; None means
    the sources may read all of the input."""
    paths: set[tuple[str, ...]] = set()
    for source in sources:
        for match in _REFERENCE.finditer(code_only(source)):
            path = tuple(match.group(1).split(".")[1:])
            if not path:
                return None
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
