"""Shared test inputs for the runner tests: proposals, pids to wait on, FIFOs to signal with."""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path
from typing import Any

from placet.domain.proposal import parse_proposal


def shell_proposal(
    argv: list[str], *, verify: dict[str, Any] | None = None, **parameters: Any
) -> dict[str, Any]:
    """A checked shell proposal's content as a dict (ProposalContent.as_dict())."""
    body: dict[str, Any] = {
        "kind": "shell",
        "targets": ["svc"],
        "parameters": {"argv": argv, **parameters},
        "environment": "production",
        "intent": "run a check for the test",
    }
    if verify is not None:
        body["verify"] = verify
    return parse_proposal(body, "agent-7").as_dict()


def python(code: str, *args: str) -> list[str]:
    """An argv running ``code`` with this interpreter."""
    return [sys.executable, "-c", code, *args]


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` has terminated within ``timeout`` (waits on a pidfd, no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 probes without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Fifo:
    """A named pipe the test holds open both ways, so neither side's open() ever blocks.

    An action signals the test by writing to it (``wait_line``), or waits until the test
    writes to it (``send``); both are real blocking waits, not polling.
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self._buffer = b""

    def wait_line(self, timeout: float = 30.0) -> str:
        """The next line written to the pipe; AssertionError if none comes within ``timeout``."""
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            assert ready, f"nothing was written to {self.path.name} within {timeout} s"
            self._buffer += os.read(self.fd, 4096)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def send(self, line: str) -> None:
        """Write one line for whoever reads the pipe."""
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> None:
        os.close(self.fd)
