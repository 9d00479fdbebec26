"""The ``git-patch`` kind: apply a unified diff to a checkout at a named base, then a command.

Parameters: ``repo`` (a checkout inside the runner's workdir), ``base`` (the commit HEAD must
be), ``patch`` (unified diff text), optional ``command`` (argv run in the repo after the
patch applies) and ``timeout``. Refused, before anything changes, when HEAD is not ``base``
or when the patch touches a path outside the proposal's ``scope``. Not idempotent.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from placet.runners import shell
from placet.runners.actions.base import (
    ActionContext,
    ActionOutcome,
    ActionRefused,
    check_argv,
    from_shell,
    refused,
    timeout_of,
)

_BASE = re.compile(r"^[0-9a-f]{7,64}$")
MAX_PATCH_BYTES = 8 * 1024 * 1024
_GIT_TIMEOUT = 60.0


def in_scope(path: str, scope: Sequence[str]) -> bool:
    """Whether repository path ``path`` is declared by ``scope``.

    An entry matches the path itself, everything under it when it names a directory
    (``src/`` or ``src``), or paths matching it as a glob (``docs/*.md``).
    """
    for entry in scope:
        item = entry.strip()
        if item.startswith("./"):
            item = item[2:]
        if not item:
            continue
        if path == item.rstrip("/") or path.startswith(item.rstrip("/") + "/"):
            return True
        if any(c in item for c in "*?[") and fnmatch.fnmatchcase(path, item):
            return True
    return False


def touched_paths(numstat: bytes) -> list[str]:
    """The paths in ``git apply --numstat -z`` output (both sides of a rename or copy)."""
    paths: list[str] = []
    fields = numstat.split(b"\0")
    i = 0
    while i < len(fields):
        record = fields[i]
        if not record:
            i += 1
            continue
        parts = record.split(b"\t", 2)
        if len(parts) != 3:
            raise ValueError(f"unexpected git apply --numstat output: {record[:80]!r}")
        if parts[2]:
            paths.append(parts[2].decode("utf-8", "surrogateescape"))
            i += 1
        else:  # a rename or copy: the two paths follow as their own fields
            paths.extend(f.decode("utf-8", "surrogateescape") for f in fields[i + 1 : i + 3])
            i += 3
    return paths


class GitPatchAction:
    """Apply a patch with ``git apply`` at an exact base commit, inside the declared scope."""

    name = "git-patch"
    idempotent = False

    def validate(self, parameters: Mapping[str, Any]) -> None:
        """Check repo, base, patch, command and timeout."""
        repo = parameters.get("repo")
        if not isinstance(repo, str) or not repo:
            raise ValueError("repo must be a path inside the runner's working directory")
        base = parameters.get("base")
        if not isinstance(base, str) or not _BASE.fullmatch(base):
            raise ValueError("base must be a commit id (7 to 64 lowercase hex digits)")
        patch = parameters.get("patch")
        if not isinstance(patch, str) or not patch.strip():
            raise ValueError("patch must be the text of a unified diff")
        if len(patch.encode()) > MAX_PATCH_BYTES:
            raise ValueError(f"patch must be at most {MAX_PATCH_BYTES} bytes")
        if parameters.get("command") is not None:
            check_argv(parameters.get("command"), "command")
        timeout_of(parameters.get("timeout"), shell.DEFAULT_TIMEOUT)

    def run(self, parameters: Mapping[str, Any], context: ActionContext) -> ActionOutcome:
        """Check base and scope, apply the patch, run the command; refusals change nothing."""
        patch_text = parameters.get("patch")
        digest = (
            hashlib.sha256(patch_text.encode()).hexdigest() if isinstance(patch_text, str) else None
        )
        try:
            self.validate(parameters)
            repo = context.inside(parameters["repo"], "repo")
        except (ValueError, ActionRefused) as exc:
            return refused(str(exc), patch_sha256=digest)
        assert isinstance(patch_text, str) and digest is not None
        with tempfile.TemporaryDirectory(prefix="placet-patch-") as scratch:
            patch_file = Path(scratch) / "change.patch"
            patch_file.write_text(patch_text)
            try:
                paths = self._checked(repo, str(parameters["base"]), patch_file, context)
            except ActionRefused as exc:
                return refused(str(exc), patch_sha256=digest)
            applied = self._git(repo, ["apply", "--", str(patch_file)], context)
        details = {"repo": str(parameters["repo"]), "paths": paths}
        if not applied.ok:
            return from_shell(
                applied,
                error=f"git apply failed: {_first_line(applied.stderr) or applied.error}",
                patch_sha256=digest,
                details=details,
                ok=False,
            )
        command = parameters.get("command")
        if command is None:
            return from_shell(applied, patch_sha256=digest, details=details)
        timeout = timeout_of(parameters.get("timeout"), shell.DEFAULT_TIMEOUT)
        result = shell.run(
            [str(part) for part in command], cwd=repo, timeout=timeout, cancel=context.cancel
        )
        return from_shell(result, patch_sha256=digest, details=details)

    def _git(self, repo: Path, args: list[str], context: ActionContext) -> shell.ShellResult:
        return shell.run(
            ["git", "-C", str(repo), *args], cwd=repo, timeout=_GIT_TIMEOUT, cancel=context.cancel
        )

    def _checked(
        self, repo: Path, base: str, patch_file: Path, context: ActionContext
    ) -> list[str]:
        """The paths the patch touches, after checking HEAD, scope and a dry run."""
        if not repo.is_dir():
            raise ActionRefused(f"repo {repo.name!r} is not a directory in the working directory")
        head = self._git(repo, ["rev-parse", "--verify", "HEAD"], context)
        if not head.ok:
            problem = _first_line(head.stderr)
            raise ActionRefused(f"repo is not a git checkout with a commit: {problem}")
        wanted = self._git(
            repo, ["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], context
        )
        head_id = head.stdout.decode().strip()
        base_id = wanted.stdout.decode().strip()
        if not wanted.ok or head_id != base_id:
            raise ActionRefused(
                f"base commit {base} is not the checkout's HEAD ({head_id[:12]}): refusing to"
                " patch another revision"
            )
        stat = self._git(repo, ["apply", "--numstat", "-z", "--", str(patch_file)], context)
        if not stat.ok:
            raise ActionRefused(f"the patch cannot be read: {_first_line(stat.stderr)}")
        try:
            paths = touched_paths(stat.stdout)
        except ValueError as exc:
            raise ActionRefused(str(exc)) from None
        if not paths:
            raise ActionRefused("the patch touches no file")
        outside = [p for p in paths if not in_scope(p, context.scope)]
        if outside:
            declared = ", ".join(context.scope) or "nothing"
            raise ActionRefused(
                f"the patch touches {outside[0]!r}, outside the proposal's scope ({declared})"
            )
        check = self._git(repo, ["apply", "--check", "--", str(patch_file)], context)
        if not check.ok:
            raise ActionRefused(f"the patch does not apply at base: {_first_line(check.stderr)}")
        return sorted(set(paths))


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""
