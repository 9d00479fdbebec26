"""A parser for the Prometheus text exposition format (0.0.4, and OpenMetrics' extras).

Lines are ``# HELP name text``, ``# TYPE name type``, other ``#`` comments, blank lines,
or samples ``name{label="value",...} value [timestamp]`` (blanks allowed between tokens).
Label values unescape ``\\\\``, ``\\"`` and ``\\n``; a trailing comma in the label set is
allowed; values are floats (``NaN``, ``+Inf``, ``-Inf`` included); the timestamp is
optional. OpenMetrics' ``# EOF`` ends the input and an exemplar (`` # {...} value``) after
a sample is ignored. Anything else is an :class:`ExpositionError` naming the line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = frozenset(
    {
        "counter",
        "gauge",
        "histogram",
        "summary",
        "untyped",
        "unknown",
        "info",
        "stateset",
        "gaugehistogram",
    }
)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class ExpositionError(ValueError):
    """A line that is not valid exposition text."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample: metric name, labels, value, optional timestamp and its line."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float | None
    line: int

    def label(self, key: str) -> str | None:
        """The value of label ``key``, if present."""
        return next((v for k, v in self.labels if k == key), None)


def parse_exposition(text: str) -> list[Sample]:
    """Every sample of ``text``, in order; raises ExpositionError on the first bad line."""
    samples: list[Sample] = []
    for number, raw in enumerate(text.split("\n"), 1):  # only \n ends a line
        line = raw.strip(" \t\r")
        if not line:
            continue
        if line.startswith("#"):
            if line == "# EOF":
                break
            _comment(line, number)
            continue
        samples.append(_sample(line, number))
    return samples


def _comment(line: str, number: int) -> None:
    parts = line[1:].split(None, 3)
    if not parts or parts[0] not in ("HELP", "TYPE"):
        return  # an ordinary comment
    if len(parts) < 2 or not _METRIC.fullmatch(parts[1]):
        raise ExpositionError(number, f"# {parts[0]} needs a valid metric name")
    if parts[0] == "TYPE" and (len(parts) != 3 or parts[2] not in TYPES):
        raise ExpositionError(number, f"# TYPE {parts[1]}: unknown type {' '.join(parts[2:])!r}")


def _sample(line: str, number: int) -> Sample:
    match = _METRIC.match(line)
    if match is None:
        raise ExpositionError(number, f"expected a metric name, found {line[:30]!r}")
    name, pos = match.group(0), match.end()
    labels: list[tuple[str, str]] = []
    if line[_skip(line, pos) : _skip(line, pos) + 1] == "{":
        pos = _labels(line, _skip(line, pos) + 1, number, labels)
    rest = line[pos:]
    if rest and not rest[0].isspace():
        raise ExpositionError(number, f"unexpected {rest[:20]!r} after {name}")
    fields = rest.split(" # ", 1)[0].split()  # drop an OpenMetrics exemplar
    if len(fields) not in (1, 2):
        raise ExpositionError(number, f"expected a value and an optional timestamp after {name}")
    value = _float(fields[0], number, "value")
    stamp = _float(fields[1], number, "timestamp") if len(fields) == 2 else None
    if stamp is not None and not math.isfinite(stamp):
        raise ExpositionError(number, f"timestamp {fields[1]!r} is not finite")
    return Sample(name, tuple(labels), value, stamp, number)


def _labels(line: str, pos: int, number: int, out: list[tuple[str, str]]) -> int:
    """Parse ``name="value",...}`` from ``pos``; return the position after ``}``."""
    while True:
        pos = _skip(line, pos)
        if line[pos : pos + 1] == "}":
            return pos + 1
        match = _LABEL.match(line, pos)
        if match is None:
            raise ExpositionError(number, f"expected a label name at column {pos + 1}")
        key = match.group(0)
        if any(k == key for k, _ in out):
            raise ExpositionError(number, f"label {key!r} appears twice")
        pos = _skip(line, match.end())
        quote = _skip(line, pos + 1) if line[pos : pos + 1] == "=" else pos
        if quote == pos or line[quote : quote + 1] != '"':
            raise ExpositionError(number, f'expected ="..." after label {key!r}')
        pos = quote + 1
        value: list[str] = []
        while True:
            if pos >= len(line):
                raise ExpositionError(number, f"unterminated value of label {key!r}")
            char = line[pos]
            if char == '"':
                break
            if char == "\\":
                escaped = line[pos + 1 : pos + 2]
                if escaped not in _ESCAPES:
                    raise ExpositionError(number, f"invalid escape \\{escaped} in label {key!r}")
                value.append(_ESCAPES[escaped])
                pos += 2
                continue
            value.append(char)
            pos += 1
        out.append((key, "".join(value)))
        pos = _skip(line, pos + 1)
        if line[pos : pos + 1] == ",":
            pos += 1
        elif line[pos : pos + 1] != "}":
            raise ExpositionError(number, f"expected ',' or '}}' after label {key!r}")


def _skip(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _float(text: str, number: int, what: str) -> float:
    special = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
    if text.lower() in special:
        return special[text.lower()]
    try:
        return float(text)
    except ValueError:
        raise ExpositionError(number, f"{what} {text!r} is not a number") from None
