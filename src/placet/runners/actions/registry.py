"""The runner's action kinds: the built-ins plus plugins from entry point group placet.actions.

A plugin entry point names an object (or a class, instantiated without arguments) with
``name``, ``idempotent``, ``validate(parameters)`` and ``run(parameters, context)``.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from placet.runners.actions.base import ActionKindPlugin
from placet.runners.actions.git_patch import GitPatchAction
from placet.runners.actions.http_kind import HttpAction
from placet.runners.actions.shell_kind import ShellAction

log = logging.getLogger("placet.runner")

ENTRY_POINT_GROUP = "placet.actions"
BUILT_IN: tuple[ActionKindPlugin, ...] = (ShellAction(), GitPatchAction(), HttpAction())
BUILT_IN_NAMES = tuple(kind.name for kind in BUILT_IN)


def as_kind(loaded: Any, origin: str) -> ActionKindPlugin:
    """The kind object an entry point names; TypeError when it lacks part of the protocol."""
    obj = loaded() if isinstance(loaded, type) else loaded
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{origin}: the action kind has no name")
    if not isinstance(getattr(obj, "idempotent", None), bool):
        raise TypeError(f"{origin}: kind {name!r} must declare idempotent as True or False")
    if not callable(getattr(obj, "validate", None)) or not callable(getattr(obj, "run", None)):
        raise TypeError(f"{origin}: kind {name!r} must have validate() and run()")
    return obj  # type: ignore[no-any-return]


def plugins() -> list[ActionKindPlugin]:
    """The installed plugin kinds; a broken plugin or a clashing name is logged and skipped."""
    found: list[ActionKindPlugin] = []
    taken = set(BUILT_IN_NAMES)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {point.name} = {point.value}"
        try:
            kind = as_kind(point.load(), origin)
        except Exception as exc:  # a plugin is third-party code: never let it stop the runner
            log.warning("%s cannot be loaded: %s", origin, exc)
            continue
        if kind.name in taken:
            log.warning("%s: kind %r is already declared; skipped", origin, kind.name)
            continue
        taken.add(kind.name)
        found.append(kind)
    return found


def all_kinds() -> dict[str, ActionKindPlugin]:
    """Every kind this runner can run, by name: built-ins first, then plugins."""
    return {kind.name: kind for kind in (*BUILT_IN, *plugins())}
