"""Run one program (argv, never a shell) in its own process group, with a timeout and caps.

The program runs in a new session so that a timeout or a cancel kills it and every child
it started; when it exits, leftover processes in its group are killed too. Output is
hashed and counted in full but only the first ``cap`` bytes are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from placet.runners.times import utc_now

DEFAULT_TIMEOUT = 60.0
OUTPUT_CAP = 1024 * 1024
_CHUNK = 65536
_TICK = 0.05  # how often a running program is checked for exit and cancel, in seconds
_DRAIN_GRACE = 1.0  # how long output is still read after the program is gone, in seconds
_HIDDEN_ENV_PREFIX = "PLACET_"


@dataclass(frozen=True, slots=True)
class ShellResult:
    """What happened when a program ran; the environment is deliberately not part of it.

    ``exit_code`` is None when the program did not start or was killed by the runner
    (timeout or cancel); a negative code means it died of that signal number on its own.
    """

    argv: tuple[str, ...]
    cwd: str
    exit_code: int | None
    timed_out: bool
    cancelled: bool
    error: str | None
    stdout: bytes
    stderr: bytes
    stdout_sha256: str
    stderr_sha256: str
    stdout_bytes: int
    stderr_bytes: int
    started_at: datetime
    finished_at: datetime

    @property
    def ok(self) -> bool:
        """The program started, finished in time and exited 0."""
        return (
            self.error is None
            and not self.timed_out
            and not self.cancelled
            and (self.exit_code == 0)
        )

    @property
    def stdout_truncated(self) -> bool:
        return self.stdout_bytes > len(self.stdout)

    @property
    def stderr_truncated(self) -> bool:
        return self.stderr_bytes > len(self.stderr)


class _Capture:
    """Hash and count a stream in full; keep only its first ``cap`` bytes."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head = bytearray()
        self.total = 0
        self.hash = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.hash.update(data)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += data[:room]


def not_started(argv: Sequence[str], cwd: Path | str, error: str) -> ShellResult:
    """The result for a program the runner refused to start (e.g. a cwd outside its workdir)."""
    now = utc_now()
    empty = hashlib.sha256().hexdigest()
    return ShellResult(
        argv=tuple(argv),
        cwd=str(cwd),
        exit_code=None,
        timed_out=False,
        cancelled=False,
        error=error,
        stdout=b"",
        stderr=b"",
        stdout_sha256=empty,
        stderr_sha256=empty,
        stdout_bytes=0,
        stderr_bytes=0,
        started_at=now,
        finished_at=now,
    )


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a program gets: the runner's own minus every ``PLACET_*`` variable."""
    source = os.environ if base is None else base
    return {k: v for k, v in source.items() if not k.upper().startswith(_HIDDEN_ENV_PREFIX)}


def _check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    if isinstance(argv, str) or not argv:
        raise ValueError("argv must be a non-empty list of strings")
    if not all(isinstance(part, str) for part in argv):
        raise ValueError("argv must contain only strings")
    if not argv[0]:
        raise ValueError("argv[0] must name a program")
    return tuple(argv)


def _cwd_problem(cwd: Path) -> str | None:
    if not cwd.exists():
        return f"working directory {cwd} does not exist"
    if not cwd.is_dir():
        return f"working directory {cwd} is not a directory"
    return None


def _start_problem(argv: tuple[str, ...], exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"program not found: {argv[0]}"
    if isinstance(exc, PermissionError):
        return f"program is not executable: {argv[0]}"
    if isinstance(exc, OSError):
        return f"cannot start {argv[0]}: {exc.strerror or exc}"
    return f"cannot start {argv[0]}: {exc}"


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the program exited, without reaping it (so its group id stays valid)."""
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        state = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return state is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _pump(selector: selectors.BaseSelector, wait: float) -> None:
    """Read whatever is ready on the program's pipes; unregister a pipe at end of file."""
    if not selector.get_map():
        return
    for key, _ in selector.select(wait):
        stream: IO[bytes] = key.fileobj  # type: ignore[assignment]
        capture: _Capture = key.data
        data = os.read(stream.fileno(), _CHUNK)
        if data:
            capture.feed(data)
        else:
            selector.unregister(stream)


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float = DEFAULT_TIMEOUT,
    cap: int = OUTPUT_CAP,
    cancel: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> ShellResult:
    """Run ``argv`` in ``cwd`` with stdin at end-of-file; kill its process group on timeout.

    Setting ``cancel`` kills the program early (the result says ``cancelled``). Problems
    the caller can fix (missing program or directory) come back as ``error``, not raised.
    """
    args = _check_argv(argv)
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    started_at = utc_now()
    out, err = _Capture(cap), _Capture(cap)

    def result(
        exit_code: int | None,
        error: str | None,
        timed_out: bool = False,
        cancelled: bool = False,
    ) -> ShellResult:
        return ShellResult(
            argv=args,
            cwd=str(cwd),
            exit_code=exit_code,
            timed_out=timed_out,
            cancelled=cancelled,
            error=error,
            stdout=bytes(out.head),
            stderr=bytes(err.head),
            stdout_sha256=out.hash.hexdigest(),
            stderr_sha256=err.hash.hexdigest(),
            stdout_bytes=out.total,
            stderr_bytes=err.total,
            started_at=started_at,
            finished_at=utc_now(),
        )

    problem = _cwd_problem(cwd)
    if problem:
        return result(None, problem)
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            env=child_environment(env),
        )
    except (OSError, ValueError) as exc:
        return result(None, _start_problem(args, exc))

    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, out)
    selector.register(proc.stderr, selectors.EVENT_READ, err)
    deadline = time.monotonic() + timeout
    timed_out = cancelled = False
    try:
        while not _has_exited(proc):
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            wait = min(_TICK, deadline - now)
            if selector.get_map():
                _pump(selector, wait)
            elif cancel is not None:
                cancel.wait(wait)
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)
        # The program is gone (or is being stopped): nothing of its group may outlive it.
        _kill_group(proc.pid)
        drain_until = time.monotonic() + _DRAIN_GRACE
        while selector.get_map() and time.monotonic() < drain_until:
            _pump(selector, min(_TICK, max(drain_until - time.monotonic(), 0.0)))
    finally:
        _kill_group(proc.pid)
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
    if timed_out:
        return result(None, f"timed out after {timeout:g} s", timed_out=True)
    if cancelled:
        return result(None, "cancelled", cancelled=True)
    return result(proc.returncode, None)
