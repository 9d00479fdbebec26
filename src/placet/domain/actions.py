"""Action kinds a proposal may name, and the checks on their parameters.

Besides the built-in kinds, plugins installed in the entry point group ``placet.actions``
declare kinds (their ``validate`` checks the parameters); see docs/actions.md.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from placet.domain.errors import InputError

MAX_TIMEOUT_SECONDS = 3600.0
PLUGIN_GROUP = "placet.actions"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
log = logging.getLogger("placet.actions")


@dataclass(frozen=True, slots=True)
class ActionKind:
    """A declared action kind: its name, what it does and how its parameters are checked."""

    name: str
    description: str
    check: Callable[[Mapping[str, Any]], None]
    idempotent: bool = False


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


def check_string_map(value: Any, field: str) -> None:
    """An optional object whose values are all strings (env, headers)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise InputError(field, "must be an object of names to strings")
    for name, item in value.items():
        if not isinstance(item, str):
            raise InputError(f"{field}.{name}", "must be a string")


def _check_shell(parameters: Mapping[str, Any]) -> None:
    check_argv(parameters.get("argv"), "parameters.argv")
    check_timeout(parameters.get("timeout"), "parameters.timeout")
    check_cwd(parameters.get("cwd"), "parameters.cwd")
    check_string_map(parameters.get("env"), "parameters.env")


def _check_git_patch(parameters: Mapping[str, Any]) -> None:
    repo = parameters.get("repo")
    if not isinstance(repo, str) or not repo:
        raise InputError("parameters.repo", "must be a path inside the runner's working directory")
    base = parameters.get("base")
    if not isinstance(base, str) or not _COMMIT.fullmatch(base):
        raise InputError("parameters.base", "must be a commit id (7 to 64 lowercase hex digits)")
    patch = parameters.get("patch")
    if not isinstance(patch, str) or not patch.strip():
        raise InputError("parameters.patch", "must be the text of a unified diff")
    if parameters.get("command") is not None:
        check_argv(parameters.get("command"), "parameters.command")
    check_timeout(parameters.get("timeout"), "parameters.timeout")


def check_http(parameters: Mapping[str, Any], field: str) -> None:
    """An HTTP request: method, an http(s) URL with a host, string headers, a timeout."""
    method = parameters.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise InputError(f"{field}.method", f"must be one of {', '.join(HTTP_METHODS)}")
    url = parameters.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise InputError(f"{field}.url", "must be an http:// or https:// URL")
    if not urlsplit(url).hostname:
        raise InputError(f"{field}.url", "must name a host")
    check_string_map(parameters.get("headers"), f"{field}.headers")
    check_timeout(parameters.get("timeout"), f"{field}.timeout")


def _check_http(parameters: Mapping[str, Any]) -> None:
    check_http(parameters, "parameters")


def _no_check(parameters: Mapping[str, Any]) -> None:
    return None


_KINDS: dict[str, ActionKind] = {}


def register(kind: ActionKind) -> None:
    """Declare an action kind; a second declaration of a name is an error."""
    if kind.name in _KINDS:
        raise ValueError(f"action kind {kind.name!r} is already declared")
    _KINDS[kind.name] = kind


_plugins_lock = threading.Lock()
_plugins_loaded = False


def _plugin_check(validate: Callable[[Mapping[str, Any]], None]) -> Callable[..., None]:
    def check(parameters: Mapping[str, Any]) -> None:
        try:
            validate(parameters)
        except InputError:
            raise
        except (ValueError, TypeError) as exc:
            raise InputError("parameters", str(exc)) from None

    return check


def load_plugins() -> None:
    """Declare the kinds of installed ``placet.actions`` plugins (once; broken ones skipped)."""
    global _plugins_loaded
    with _plugins_lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        for point in entry_points(group=PLUGIN_GROUP):
            try:
                loaded = point.load()
                plugin = loaded() if isinstance(loaded, type) else loaded
                name = plugin.name
                idempotent = plugin.idempotent
                validate = plugin.validate
                if not isinstance(name, str) or not name or not isinstance(idempotent, bool):
                    raise TypeError("name must be a string and idempotent a bool")
                doc = (getattr(plugin, "description", None) or plugin.__doc__ or "").strip()
                register(
                    ActionKind(
                        name,
                        doc.splitlines()[0] if doc else f"plugin {point.value}",
                        _plugin_check(validate),
                        idempotent,
                    )
                )
            except Exception as exc:  # third-party code must not stop the control plane
                log.warning("action plugin %s = %s skipped: %s", point.name, point.value, exc)


def get(name: str) -> ActionKind:
    """The declared kind called ``name``, or an InputError listing the known ones."""
    if name not in _KINDS:
        load_plugins()
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise InputError("kind", f"unknown action kind {name!r} (known: {known})") from None


def names() -> list[str]:
    """Every declared kind (plugins included), sorted."""
    load_plugins()
    return sorted(_KINDS)


register(ActionKind("shell", "run a program (argv, no shell) with a timeout", _check_shell))
register(
    ActionKind(
        "git-patch",
        "apply a unified diff to a checkout at a base commit, inside the scope",
        _check_git_patch,
    )
)
register(ActionKind("http", "send one HTTP request to an allowed URL", _check_http))
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
