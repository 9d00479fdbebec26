"""YAML loading that keeps 1-based line numbers, so every imported fact can name its line.

Mappings load as :class:`MarkedMap` and sequences as :class:`MarkedList`: ordinary ``dict`` /
``list`` objects that also know the line they start on and the line of each key or item.

Scalars follow the YAML 1.2 core schema, as the tools reading these files do (compose,
Backstage and GitHub Actions parse YAML 1.2): only ``true`` / ``false`` are booleans (``on``,
``yes``, ``no`` stay strings, so a workflow's ``on:`` key is ``"on"``); integers are decimal,
``0o`` octal or ``0x`` hex (``2222:22`` stays a string, never YAML 1.1's base-60 1342;
``0644`` is 644); floats are decimal or ``.inf`` / ``.nan``; dates stay strings. Explicit
tags other than the core ones (``!!binary``, ``!!set``, ``!Ref``...) are errors. Merge keys
(``<<: *base``) are honoured, as compose files use them: merged keys come where the ``<<``
is written, the mapping's own keys win, and in ``<<: [*a, *b]`` ``a`` wins over ``b``.

Strictness: a duplicate key is an error naming its line (YAML forbids them; docker compose,
Backstage and GitHub reject them), never a silent last-one-wins. Every alias yields a fresh
copy of its anchor's value, which keeps the lines where that value is written (as Go YAML
decoders copy), so importers never meet shared or cyclic structures; an anchor may be
redefined (an alias means the latest one, as YAML says). An alias inside its own anchor's
value, and aliases that expand to far more than the file holds ("billion laughs"), are
errors. Malformed YAML raises :class:`GraphInputError` naming the file and line.

Speed: libyaml (when PyYAML has it) parses; the values are built straight from its event
stream in one pass, without PyYAML's composer, resolver and constructor: about twice as fast
as ``yaml.load_all(text, CSafeLoader)``, which keeps no lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from placet.graph.errors import GraphInputError

_Parser: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # libyaml when available

_CORE = "tag:yaml.org,2002:"
_MERGE_KEY = object()  # what a plain "<<" key reads as, until the mapping is merged
_NULLS = {"": None, "~": None, "null": None, "Null": None, "NULL": None}
_BOOLS = {word: word[0] in "tT" for word in ("true", "True", "TRUE", "false", "False", "FALSE")}
_SPECIAL_FLOATS = {
    **{f"{sign}.{word}": float(f"{sign}inf") for sign in "+-" for word in ("inf", "Inf", "INF")},
    **{f".{word}": float(word) for word in ("inf", "Inf", "INF", "nan", "NaN", "NAN")},
}
_WORDS: dict[str, Any] = {**_NULLS, **_BOOLS, **_SPECIAL_FLOATS, "<<": _MERGE_KEY}
_NOT_A_WORD = object()
_READING = (None, -1)  # an anchor whose value is still being read: an alias to it recurses
_TAGS = {True: (None, "!", _CORE + "map"), False: (None, "!", _CORE + "seq")}
_RESOLVABLE_START = frozenset("0123456789+-.~nNtTfF<")
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")

# Aliases may add at most this many entries (map pairs and list items) to a document beyond
# ten times the entries written in it: a "billion laughs" file stops here, quickly.
_ALIAS_FLOOR = 100_000
_ALIAS_RATIO = 10
# Deeper nesting is refused (configuration is never near it), so that code walking a loaded
# value recursively, as importers do, cannot exhaust Python's stack.
_MAX_DEPTH = 200


class MarkedMap(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int = 0) -> None:  # dict.__new__ made it empty already
        self.line = line
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        """The line of ``key``, or of the mapping itself when the key is absent."""
        return self.key_lines.get(key, self.line)


class MarkedList(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int = 0) -> None:  # list.__new__ made it empty already
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        """The line of item ``index``, or of the sequence itself when out of range."""
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


def _int(text: str) -> int:
    base = {"0x": 16, "0o": 8}.get(text[:2])
    return int(text[2:], base) if base else int(text)


def _plain(text: str) -> Any:
    """The YAML 1.2 core value of an untagged plain scalar that may not be a string."""
    word = _WORDS.get(text, _NOT_A_WORD)
    if word is not _NOT_A_WORD:
        return word
    if _INT_RE.fullmatch(text):
        return _int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    return text


def _tagged(tag: str, text: str) -> Any:
    """The value of a scalar with an explicit tag; ``_NOT_A_WORD`` when it cannot be one."""
    name = tag[len(_CORE) :] if tag.startswith(_CORE) else None
    if tag == "!" or name in ("str", "merge"):
        return text
    if name == "int" and _INT_RE.fullmatch(text):
        return _int(text)
    if name == "float" and (text in _SPECIAL_FLOATS or _FLOAT_RE.fullmatch(text)):
        return _SPECIAL_FLOATS.get(text) or float(text)
    if (name == "bool" and text in _BOOLS) or (name == "null" and text in _NULLS):
        return _WORDS[text]
    return _NOT_A_WORD


def _short(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _copy(value: Any) -> Any:
    """A deep copy of a loaded value, lines included (what an alias stands for)."""
    if isinstance(value, MarkedMap):
        result = MarkedMap(value.line)
        result.key_lines = dict(value.key_lines)
        result.update((key, _copy(item)) for key, item in value.items())
        return result
    if isinstance(value, MarkedList):
        copied = MarkedList(value.line)
        copied.item_lines = list(value.item_lines)
        copied.extend(_copy(item) for item in value)
        return copied
    return value


class _Builder:
    """Builds the documents of one file from the parser's events."""

    def __init__(self, file: str, next_event: Callable[[], Any]) -> None:
        self.file = file
        self.next_event = next_event
        # anchor -> (value, entries it holds); entries -1 while its value is being read
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.entries = 0  # map pairs and list items in the document, aliases included
        self.copied = 0  # ... of which aliases made

    def fail(self, line: int, problem: str) -> GraphInputError:
        return GraphInputError(self.file, problem, line)

    def documents(self) -> list[tuple[Any, int]]:
        """Every document with its line: one pass over the events, a stack of open containers
        (the hot loop, so the state of the innermost container is kept in locals)."""
        next_event, anchors = self.next_event, self.anchors
        documents: list[tuple[Any, int]] = []
        stack: list[tuple[Any, bool, bool, Any, tuple[str, int] | None]] = []
        top: Any = None  # the innermost open MarkedMap / MarkedList
        is_map = want_key = False
        key: Any = None
        while True:
            event = next_event()
            kind = event.__class__
            if kind is ScalarEvent:
                value = event.value
                line = event.start_mark.line + 1
                if event.tag is not None:
                    value = self.tagged(event.tag, value, line)
                elif event.implicit[0] and (not value or value[0] in _RESOLVABLE_START):
                    value = _plain(value)
                    if value is _MERGE_KEY and not want_key:
                        value = "<<"  # only a key merges
                if event.anchor is not None:
                    anchors[event.anchor] = ("<<" if value is _MERGE_KEY else value, 0)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                line = event.start_mark.line + 1
                is_mapping = kind is MappingStartEvent
                if event.tag not in _TAGS[is_mapping]:
                    raise self.fail(line, f"malformed YAML: unsupported tag {_short(event.tag)}")
                if len(stack) >= _MAX_DEPTH:
                    raise self.fail(line, f"YAML nested more than {_MAX_DEPTH} levels deep")
                anchor = None
                if event.anchor is not None:
                    anchors[event.anchor] = _READING
                    anchor = (event.anchor, self.entries)
                stack.append((top, is_map, want_key, key, anchor))
                top = MarkedMap(line) if is_mapping else MarkedList(line)
                is_map = want_key = is_mapping
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                value, line = top, top.line
                self.entries += len(top)
                if is_map and _MERGE_KEY in top.key_lines:
                    value = self.merged(top)
                top, is_map, want_key, key, anchor = stack.pop()
                if anchor is not None and anchors.get(anchor[0]) is _READING:
                    # (unless the value redefined the anchor: the latest definition counts)
                    anchors[anchor[0]] = (value, self.entries - anchor[1])
            elif kind is AliasEvent:
                line = event.start_mark.line + 1
                value = self.alias(event.anchor, line)
            elif kind is StreamEndEvent:
                return documents
            else:  # stream start, document start / end
                if kind is DocumentStartEvent:
                    anchors.clear()
                    self.entries = self.copied = 0
                continue
            if top is None:
                documents.append((value, line))
            elif not is_map:
                top.append(value)
                top.item_lines.append(line)
            elif want_key:
                try:
                    first = top.key_lines.get(value)
                except TypeError:
                    raise self.fail(line, "malformed YAML: a mapping or list as a key") from None
                if first is not None:
                    name = "'<<'" if value is _MERGE_KEY else repr(value)
                    problem = f"malformed YAML: duplicate key {name} (first on line {first})"
                    raise self.fail(line, problem)
                top.key_lines[value] = line
                key, want_key = value, False
            else:
                top[key] = value
                want_key = True

    def tagged(self, tag: str, text: str, line: int) -> Any:
        value = _tagged(tag, text)
        if value is not _NOT_A_WORD:
            return value
        if tag.startswith(_CORE) and tag[len(_CORE) :] in ("int", "float", "bool", "null"):
            raise self.fail(line, f"malformed YAML: {text!r} is not a valid {_short(tag)}")
        raise self.fail(line, f"malformed YAML: unsupported tag {_short(tag)}")

    def alias(self, anchor: str, line: int) -> Any:
        """A fresh copy of the value of ``anchor`` (refused when it would be too much)."""
        value, size = self.anchors.get(anchor, (None, -2))
        if size == -2:
            raise self.fail(line, f"malformed YAML: alias *{anchor} has no anchor before it")
        if size == -1:
            raise self.fail(line, f"alias *{anchor} inside its own anchor's value (recursive)")
        if not isinstance(value, MarkedMap | MarkedList):
            return value
        if self.copied + size > _ALIAS_FLOOR + _ALIAS_RATIO * (self.entries - self.copied):
            raise self.fail(line, f"aliases expand to too many values (at *{anchor}: a YAML bomb?)")
        self.entries += size
        self.copied += size
        return _copy(value)

    def merged(self, own: MarkedMap) -> MarkedMap:
        """``own`` with, where its ``<<`` is, the keys ``<<`` merges in that it lacks."""
        result = MarkedMap(own.line)
        for key, value in own.items():
            if key is not _MERGE_KEY:
                result[key], result.key_lines[key] = value, own.key_lines[key]
                continue
            sources = value if isinstance(value, MarkedList) else [value]
            if not all(isinstance(source, MarkedMap) for source in sources):
                problem = "malformed YAML: << needs a mapping or a list of mappings"
                raise self.fail(own.key_lines[key], problem)
            for source in sources:
                for merged, merged_value in source.items():
                    if merged not in own and merged not in result:
                        result[merged] = merged_value
                        result.key_lines[merged] = source.line_of(merged)
        return result


def load_documents(file: Path, text: str | None = None) -> list[tuple[Any, int]]:
    """Every document of ``file`` (or of ``text``; None for an empty one) with the 1-based
    line it starts on. Malformed YAML raises GraphInputError naming the file and line."""
    return _load(file, read_text(file) if text is None else text, _Parser)


def _load(file: Path, text: str, parser_class: Any) -> list[tuple[Any, int]]:
    """:func:`load_documents` with a given PyYAML parser (libyaml's, or the pure-Python one
    that stands in when PyYAML lacks libyaml)."""
    parser = parser_class(text)
    try:
        return _Builder(str(file), parser.get_event).documents()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        raise GraphInputError(
            str(file), f"malformed YAML: {problem}", mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise GraphInputError(str(file), "malformed YAML: " + " ".join(str(exc).split())) from None
    finally:
        parser.dispose()


def read_text(file: Path) -> str:
    """The UTF-8 text of ``file``; unreadable files raise GraphInputError."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphInputError(str(file), "no such file") from None
    except UnicodeDecodeError as exc:
        raise GraphInputError(str(file), f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise GraphInputError(str(file), f"cannot read: {exc.strerror or exc}") from None


def plain(value: Any) -> Any:
    """``value`` with YAML containers as plain dicts and lists, and odd scalars as strings:
    what a fact's attributes may hold (they are hashed as canonical JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
