"""What a runner can execute: built-in action kinds (shell, git-patch, http) and plugins."""

from placet.runners.actions.base import (
    ActionContext,
    ActionKindPlugin,
    ActionOutcome,
    ActionRefused,
    from_shell,
    refused,
)
from placet.runners.actions.registry import BUILT_IN_NAMES, ENTRY_POINT_GROUP, all_kinds

__all__ = [
    "BUILT_IN_NAMES",
    "ENTRY_POINT_GROUP",
    "ActionContext",
    "ActionKindPlugin",
    "ActionOutcome",
    "ActionRefused",
    "all_kinds",
    "from_shell",
    "refused",
]
