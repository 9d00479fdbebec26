"""Action kinds a proposal may name, and the checks on their parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from placet.domain.errors import InputError

MAX_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class ActionKind:
    """A declared action kind: its name, what it does and how its parameters are checked."""

    name: str
    description: str
    check: Callable[[Mapping[str, Any]], None]


def check_argv(value: Any, field: str) -> list[str]:
    """An argv is a non-empty list of strings; the first one is not empty."""
    if not isinstance(value, list) or not value:
        raise InputError(field, "must be a non-empty list of strings")
    for i, part in enumerate(value):
        if not isinstance(part, str):
            raise InputError(f"{field}[{i}]", "must be a string")
    if not value[0]:
        raise InputError(f"{field}[0]", "must name a program")
    return value


def check_timeout(value: Any, field: str) -> None:
    """A timeout is a positive number of seconds, at most one hour."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, "must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise InputError(field, f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds")


def check_cwd(value: Any, field: str) -> None:
    """A working directory, when given, is a non-empty path string."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InputError(field, "must be a non-empty path")


def _check_shell(parameters: Mapping[str, Any]) -> None:
    check_argv(parameters.get("argv"), "parameters.argv")
    check_timeout(parameters.get("timeout"), "parameters.timeout")
    check_cwd(parameters.get("cwd"), "parameters.cwd")


def _no_check(parameters: Mapping[str, Any]) -> None:
    return None


_KINDS: dict[str, ActionKind] = {}


def register(kind: ActionKind) -> None:
    """Declare an action kind; a second declaration of a name is an error."""
    if kind.name in _KINDS:
        raise ValueError(f"action kind {kind.name!r} is already declared")
    _KINDS[kind.name] = kind


def get(name: str) -> ActionKind:
    """The declared kind called ``name``, or an InputError listing the known ones."""
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise InputError("kind", f"unknown action kind {name!r} (known: {known})") from None


def names() -> list[str]:
    """Every declared kind, sorted."""
    return sorted(_KINDS)


register(ActionKind("shell", "run a program (argv, no shell) with a timeout", _check_shell))
for _name, _description in [
    ("restart", "restart a service"),
    ("deploy", "deploy a new version"),
    ("rollback", "roll back to an earlier version"),
    ("scale", "change the replica count of a service"),
    ("patch", "apply a code or configuration patch"),
    ("tool_call", "call an external tool on the agent's behalf"),
    ("delete_resource", "delete a resource"),
    ("drop_database", "drop a database"),
    ("destroy_environment", "tear down an environment"),
    ("purge_data", "irreversibly delete stored data"),
]:
    register(ActionKind(_name, _description, _no_check))
