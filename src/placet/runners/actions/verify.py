"""Post-conditions (a proposal's ``verify``): a command that must exit 0 or an HTTP check
that must answer 2xx, retried every ``interval`` seconds for up to ``retry_for`` seconds.

Every attempt is counted; the report keeps the last attempt in full and a short history.
Formats: notes/issue5.md ("Proposal verify").
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from placet.runners import shell
from placet.runners.actions.base import (
    ActionContext,
    ActionOutcome,
    ActionRefused,
    from_shell,
    refused,
)
from placet.runners.actions.http_kind import request

DEFAULT_INTERVAL = 2.0
MAX_RETRY_FOR = 600.0
HISTORY = 20  # attempts kept in the report besides the count


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every attempt of one post-condition: how many, the last one and a short history."""

    check: str  # "argv" or "http"
    attempts: int
    last: ActionOutcome
    history: tuple[ActionOutcome, ...]
    retry_for: float
    interval: float

    @property
    def passed(self) -> bool:
        """The last attempt passed (earlier failures within ``retry_for`` do not count)."""
        return self.last.ok


def _seconds(value: Any, default: float, low: float, high: float, name: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"verify.{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _attempt(spec: Mapping[str, Any], context: ActionContext) -> ActionOutcome:
    if "http" in spec:
        http = spec["http"]
        if not isinstance(http, dict):
            return refused("verify.http must be an object")
        return request(http, context, body_allowed=False)
    argv = spec.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return refused("verify.argv must be a non-empty list of strings")
    try:
        where = context.inside(spec.get("cwd"), "verify.cwd")
    except ActionRefused as exc:
        return refused(str(exc), argv=tuple(argv))
    timeout = spec.get("timeout") or shell.DEFAULT_TIMEOUT
    result = shell.run(
        argv, cwd=where, timeout=float(timeout), cancel=context.cancel, env=dict(os.environ)
    )
    return from_shell(result)


def run_check(spec: Mapping[str, Any], context: ActionContext) -> CheckReport:
    """Run the post-condition until it passes, ``retry_for`` runs out or the lease is lost."""
    check = "http" if "http" in spec else "argv"
    try:
        retry_for = _seconds(spec.get("retry_for"), 0.0, 0.0, MAX_RETRY_FOR, "retry_for")
        interval = _seconds(spec.get("interval"), DEFAULT_INTERVAL, 0.1, 60.0, "interval")
    except ValueError as exc:
        outcome = refused(str(exc))
        return CheckReport(check, 0, outcome, (), 0.0, DEFAULT_INTERVAL)
    deadline = time.monotonic() + retry_for
    history: list[ActionOutcome] = []
    attempts = 0
    while True:
        outcome = _attempt(spec, context)
        attempts += 1
        history = [*history[-(HISTORY - 1) :], outcome]
        if outcome.ok or context.cancel.is_set():
            break
        if not outcome.started:  # refused (bad spec, URL not allowed): retrying cannot help
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if context.cancel.wait(min(interval, left)):
            break
    return CheckReport(check, attempts, outcome, tuple(history), retry_for, interval)
