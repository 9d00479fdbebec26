"""An idempotent action kind for the retry tests, declared once through actions.register."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from placet.domain import actions
from placet.domain.errors import InputError

RETRIABLE = "retry-probe"


def _no_parameters_needed(parameters: Mapping[str, Any]) -> None:
    return None


def declare() -> str:
    """Declare the idempotent kind ``retry-probe`` (once per process) and return its name."""
    try:
        actions.get(RETRIABLE)
    except InputError:
        actions.register(
            actions.ActionKind(
                RETRIABLE,
                "a no-op that may safely run twice (retry tests)",
                _no_parameters_needed,
                idempotent=True,
            )
        )
    return RETRIABLE


declare()
