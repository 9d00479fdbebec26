"""The ``shell`` kind: run one program (argv, never a shell) in the runner's workdir.

Parameters: ``argv`` (required), ``timeout`` seconds, ``cwd`` inside the workdir, ``env``
(an object whose names must all be in the runner's ``--allow-env`` list). Not idempotent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from placet.runners import shell
from placet.runners.actions.base import (
    ActionContext,
    ActionOutcome,
    ActionRefused,
    check_argv,
    env_of,
    from_shell,
    refused,
    timeout_of,
)

_FIELDS = {"argv", "timeout", "cwd", "env", "runner_selector"}


class ShellAction:
    """Run a program with a timeout; its whole process group dies with it."""

    name = "shell"
    idempotent = False

    def validate(self, parameters: Mapping[str, Any]) -> None:
        """Check argv, timeout, cwd and env's shape (the allow-list is the runner's to check)."""
        check_argv(parameters.get("argv"), "argv")
        timeout_of(parameters.get("timeout"), shell.DEFAULT_TIMEOUT)
        cwd = parameters.get("cwd")
        if cwd is not None and (not isinstance(cwd, str) or not cwd):
            raise ValueError("cwd must be a non-empty path")
        env = parameters.get("env")
        if env is not None and (
            not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())
        ):
            raise ValueError("env must be an object of names to string values")

    def run(self, parameters: Mapping[str, Any], context: ActionContext) -> ActionOutcome:
        """Run the program; a cwd outside the workdir or an env name not allowed is refused."""
        argv = tuple(str(part) for part in parameters.get("argv") or ())
        try:
            self.validate(parameters)
            where = context.inside(parameters.get("cwd"), "cwd")
            env = env_of(parameters.get("env"), context.allow_env)
        except (ValueError, ActionRefused) as exc:
            return refused(str(exc), argv=argv)
        timeout = timeout_of(parameters.get("timeout"), shell.DEFAULT_TIMEOUT)
        result = shell.run(
            argv, cwd=where, timeout=timeout, cancel=context.cancel, env={**os.environ, **env}
        )
        return from_shell(result)
