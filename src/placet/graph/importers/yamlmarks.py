"""YAML loading that remembers where things are, so facts can cite their line.

Mappings load as :class:`MarkedMap` and sequences as :class:`MarkedList`: ordinary ``dict``
and ``list`` that also carry the 1-based line they start on and the lines of their keys /
items. Integers follow YAML 1.2 (``10002:9090`` stays a string, as in Docker Compose and
Kubernetes, not PyYAML's base-60 number) and a duplicate key is an error naming its line
(as kubectl and docker compose do), never a silent last-one-wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from placet.graph.errors import GraphInputError

_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class MarkedMap(dict[Any, Any]):
    """A YAML mapping with the line it starts on and the line of each key."""

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        """The line of ``key`` if present, else the line of the mapping."""
        return self.key_lines.get(key, self.line)


class MarkedList(list[Any]):
    """A YAML sequence with the line it starts on and the line of each item."""

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        """The line of item ``index``, else the line of the sequence."""
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _Loader(_Base):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 integers and line-carrying containers."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _INT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"),
)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[MarkedMap]:
    data = MarkedMap(node.start_mark.line + 1)
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    data.update(loader.construct_mapping(node))  # also flattens merge keys (<<)
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            data.key_lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> Iterator[MarkedList]:
    data = MarkedList(node.start_mark.line + 1)
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def load_documents(file: Path, text: str | None = None) -> list[tuple[Any, int]]:
    """Every document of ``file`` (None for an empty one) with the line it starts on.

    Reads ``file`` unless ``text`` is given. Malformed YAML raises GraphInputError naming
    the file and line.
    """
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GraphInputError(str(file), f"cannot read file: {exc}") from exc
    loader = _Loader(text)
    documents: list[tuple[Any, int]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else 1
            documents.append((loader.construct_document(node), line))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = f"malformed YAML: {exc.problem or exc.context or 'unreadable'}"
        raise GraphInputError(str(file), problem, mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise GraphInputError(str(file), f"malformed YAML: {exc}") from exc
    finally:
        loader.dispose()
    return documents
