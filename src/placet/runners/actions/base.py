"""What every runner action kind shares: its context, its outcome and the plugin protocol.

A kind is an object with ``name``, ``idempotent``, ``validate(parameters)`` and
``run(parameters, context)``; built-in kinds and plugins (entry point group
``placet.actions``) look the same to the runner.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from placet.runners.shell import ShellResult
from placet.runners.times import utc_now

EMPTY_SHA256 = hashlib.sha256().hexdigest()


class ActionRefused(Exception):
    """The runner will not run this action (outside an allow-list, wrong base, bad path...)."""


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action may use on this runner: its workdir, allow-lists and the cancel event.

    ``scope`` is the proposal's declared scope; ``cancel`` is set when the lease is lost.
    """

    workdir: Path
    allow_env: frozenset[str] = frozenset()
    allow_urls: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    cancel: threading.Event = field(default_factory=threading.Event)
    http_timeout: float = 30.0

    def inside(self, relative: Any, what: str) -> Path:
        """``relative`` resolved inside the workdir; ActionRefused when it leaves it."""
        if relative is None:
            return self.workdir
        where = (self.workdir / str(relative)).resolve()
        if not where.is_relative_to(self.workdir):
            raise ActionRefused(f"{what} {relative!r} is outside the runner's working directory")
        return where


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What one action did, in the terms the execution statement records.

    ``exit_code`` is a program's exit code, ``http_status`` an HTTP answer's status; both are
    None when nothing ran (``started`` is False when the runner refused to start it).
    ``stdout``/``stderr`` hold the kept part of each stream (an HTTP
    answer's body is its stdout); their digests and sizes cover the whole stream.
    """

    ok: bool
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    http_status: int | None = None
    timed_out: bool = False
    patch_sha256: str | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_sha256: str = EMPTY_SHA256
    stderr_sha256: str = EMPTY_SHA256
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)
    started: bool = True


def refused(error: str, **extra: Any) -> ActionOutcome:
    """The outcome of an action the runner refused before starting anything."""
    now = utc_now()
    return ActionOutcome(
        ok=False, started_at=now, finished_at=now, error=error, started=False, **extra
    )


def from_shell(result: ShellResult, **extra: Any) -> ActionOutcome:
    """An outcome from a program's ShellResult (ok iff it started, finished and exited 0).

    ``extra`` sets or overrides outcome fields (``patch_sha256``, ``details``, ``error``...).
    """
    fields: dict[str, Any] = {
        "ok": result.ok,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "error": result.error,
        "argv": result.argv,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "stdout_sha256": result.stdout_sha256,
        "stderr_sha256": result.stderr_sha256,
        "stdout_bytes": result.stdout_bytes,
        "stderr_bytes": result.stderr_bytes,
    }
    fields.update(extra)
    return ActionOutcome(**fields)


@runtime_checkable
class ActionKindPlugin(Protocol):
    """An action kind the runner can run: built in, or a plugin in group ``placet.actions``.

    ``validate`` raises ValueError (or placet's InputError) naming the bad parameter;
    ``run`` never raises for a failed action: it returns an outcome with ``ok=False``.
    """

    name: str
    idempotent: bool

    def validate(self, parameters: Mapping[str, Any]) -> None: ...

    def run(self, parameters: Mapping[str, Any], context: ActionContext) -> ActionOutcome: ...


def string_list(value: Any, field_name: str) -> list[str]:
    """A list of strings (possibly empty) or ValueError naming ``field_name``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field_name} must be a list of strings")
    return value


def check_argv(value: Any, field_name: str) -> tuple[str, ...]:
    """A non-empty argv whose first element names a program, or ValueError."""
    argv = string_list(value, field_name)
    if not argv or not argv[0]:
        raise ValueError(f"{field_name} must be a non-empty list of strings naming a program")
    return tuple(argv)


def timeout_of(value: Any, default: float) -> float:
    """A positive number of seconds, or ``default`` when absent."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError("timeout must be a positive number of seconds")
    return float(value)


def env_of(value: Any, allowed: frozenset[str]) -> dict[str, str]:
    """An action's ``env`` object; every name must be in the runner's allow-list."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ActionRefused("env must be an object of names to string values")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(text, str):
            raise ActionRefused(f"env.{name} must be a string")
        if name not in allowed:
            shown = ", ".join(sorted(allowed)) or "none"
            raise ActionRefused(
                f"env.{name} is not in the runner's env allow-list (--allow-env; allowed: {shown})"
            )
        out[name] = text
    return out


def names_of(items: Sequence[ActionKindPlugin]) -> list[str]:
    """The kinds' names, in order."""
    return [item.name for item in items]
