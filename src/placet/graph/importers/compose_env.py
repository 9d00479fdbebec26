"""Docker Compose variables: the ``.env`` file and ``${VAR}`` interpolation, as compose does.

Interpolation forms: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty),
``${VAR-default}`` (unset), ``${VAR:+alt}`` / ``${VAR+alt}``, ``${VAR:?message}`` /
``${VAR?message}``, ``$$`` for a literal ``$``; defaults may nest (``${A:-${B}}``). A ``$``
followed by anything else is an invalid template, as in docker compose.

Values come only from the ``.env`` beside the compose file (and defaults), never from the
process environment, so an import is reproducible on any machine. An unset variable
interpolates to an empty string and is reported through the ``missing`` callback (compose
warns the same way); a failed ``:?`` requirement is reported too instead of aborting.

``.env`` syntax: ``KEY=VALUE`` lines, optional ``export``, ``#`` comment lines, inline
`` #`` comments on unquoted values, single quotes literal, double quotes with ``\\n``,
``\\"``, ``\\$`` and ``\\\\`` escapes; unquoted and double-quoted values interpolate the variables
defined above them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from placet.graph.errors import GraphInputError

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_LINE = re.compile(r"^\s*(?:export\s+)?([_a-zA-Z][_a-zA-Z0-9.-]*)\s*=\s*(.*)$")
_OPS = (":-", ":+", ":?", "-", "+", "?")

Missing = Callable[[str, str], None]  # (variable, what happened)


class TemplateError(ValueError):
    """An invalid ``$`` template (the message says where in the value)."""


def interpolate(text: str, env: Mapping[str, str], missing: Missing) -> str:
    """``text`` with every variable replaced (see the module docstring)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2)
            out.append(_braced(text[i + 2 : end], env, missing))
            i = end + 1
        elif match := _NAME.match(text, i + 1):
            out.append(_lookup(match.group(0), env, missing))
            i = match.end()
        else:
            raise TemplateError(f"invalid interpolation {text[i : i + 12]!r} (use $$ for a $)")
    return "".join(out)


def _closing(text: str, start: int) -> int:
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise TemplateError(f"unclosed '${{' in {text!r}")


def _lookup(name: str, env: Mapping[str, str], missing: Missing) -> str:
    if name not in env:
        missing(name, "is not set; using an empty string")
        return ""
    return env[name]


def _braced(expr: str, env: Mapping[str, str], missing: Missing) -> str:
    match = _NAME.match(expr)
    if match is None:
        raise TemplateError(f"invalid interpolation '${{{expr}}}'")
    name, rest = match.group(0), expr[match.end() :]
    if not rest:
        return _lookup(name, env, missing)
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise TemplateError(f"invalid interpolation '${{{expr}}}'")
    arg = rest[len(op) :]
    value = env.get(name)
    present = value is not None and (value != "" or ":" not in op)
    if op in (":-", "-"):
        return value if present and value is not None else interpolate(arg, env, missing)
    if op in (":+", "+"):
        return interpolate(arg, env, missing) if present else ""
    if not present or value is None:
        missing(name, f"is required ({interpolate(arg, env, missing) or 'no message'})")
        return ""
    return value


def parse_dotenv(path: Path, base: Mapping[str, str], missing: Missing) -> dict[str, str]:
    """The variables of the env file ``path``, interpolated with ``base`` and earlier lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphInputError(str(path), f"cannot read env file: {exc}") from exc
    env = dict(base)
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            continue  # a bare NAME takes its value from the shell: not read, by design
        key, raw = match.group(1), match.group(2).strip()
        try:
            value = _value(raw, env, missing)
        except TemplateError as exc:
            raise GraphInputError(str(path), str(exc), number) from exc
        env[key] = found[key] = value
    return found


def _value(raw: str, env: Mapping[str, str], missing: Missing) -> str:
    if raw.startswith("'"):
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 else raw[1:]
    if raw.startswith('"'):
        body, i = [], 1
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw):
                body.append({"n": "\n", "t": "\t", "$": "$$"}.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            body.append(raw[i])
            i += 1
        return interpolate("".join(body), env, missing)
    value = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    return interpolate(value, env, missing)
