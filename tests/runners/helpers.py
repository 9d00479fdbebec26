"""Shared test inputs for the runner tests: a real proposal and a way to wait for a pid."""

from __future__ import annotations

import os
import select
import sys
from typing import Any

from placet.domain.proposal import parse_proposal


def shell_proposal(
    argv: list[str], *, verify: dict[str, Any] | None = None, **parameters: Any
) -> dict[str, Any]:
    """A checked shell proposal's content as a dict (ProposalContent.as_dict())."""
    body: dict[str, Any] = {
        "kind": "shell",
        "targets": ["service:web"],
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
