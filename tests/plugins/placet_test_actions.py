"""placet action plugins shipped with the tests: ``write-note`` writes a file; ``hold-note``
records its start, holds until released, then writes one (lost-runner retry tests).

``write-note`` is discovered through ``placet_test_actions-1.0.dist-info/entry_points.txt``
when this directory is on ``sys.path`` (PYTHONPATH), exactly as an installed package's would
be. ``hold-note`` is declared only by a second dist-info that tests/e2e/test_retry_e2e.py
writes to a temporary directory it also puts on PYTHONPATH, so the shipped dist-info keeps
the one kind other tests expect of it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from typing import Any

from placet.runners.actions import ActionContext, ActionOutcome, ActionRefused, refused
from placet.runners.times import utc_now

DEFAULT_HOLD_SECONDS = 60.0
HOLD_POLL_SECONDS = 0.05


class WriteNote:
    """Write ``text`` to the file ``name`` in the runner's working directory."""

    name = "write-note"
    idempotent = True

    def validate(self, parameters: Mapping[str, Any]) -> None:
        """``name`` is a file name and ``text`` a string."""
        name = parameters.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError("name must be a plain file name")
        if not isinstance(parameters.get("text"), str):
            raise ValueError("text must be a string")

    def run(self, parameters: Mapping[str, Any], context: ActionContext) -> ActionOutcome:
        """Write the note; say what was written on stdout."""
        started = utc_now()
        try:
            self.validate(parameters)
            target = context.inside(parameters["name"], "name")
        except (ValueError, ActionRefused) as exc:
            return refused(str(exc))
        target.write_text(parameters["text"])
        said = f"wrote {target.name}\n".encode()
        return ActionOutcome(
            ok=True,
            started_at=started,
            finished_at=utc_now(),
            stdout=said,
            stdout_sha256=hashlib.sha256(said).hexdigest(),
            stdout_bytes=len(said),
            details={"file": target.name},
        )


class HoldNote:
    """Record that it started, hold until released, then write a note (retry tests).

    Parameters: ``name`` and ``text`` (the note, as ``write-note``), ``started`` (a file to
    which the runner's pid is appended as the action starts, so a test sees every run and
    which runner process made it), ``release`` (the action holds until this file exists)
    and ``timeout`` (seconds to hold at most; default 60). When the lease is lost (the
    context's cancel event) or the hold times out, it stops without writing the note.
    """

    name = "hold-note"
    idempotent = True

    def validate(self, parameters: Mapping[str, Any]) -> None:
        """``name``, ``started`` and ``release`` are file names, ``text`` a string, ``timeout``
        a positive number of seconds (at most 600)."""
        for key in ("name", "started", "release"):
            value = parameters.get(key)
            if not isinstance(value, str) or not value or "/" in value:
                raise ValueError(f"{key} must be a plain file name")
        if not isinstance(parameters.get("text"), str):
            raise ValueError("text must be a string")
        timeout = parameters.get("timeout", DEFAULT_HOLD_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ValueError("timeout must be a number of seconds")
        if not 0 < timeout <= 600:
            raise ValueError("timeout must be more than 0 and at most 600 seconds")

    def run(self, parameters: Mapping[str, Any], context: ActionContext) -> ActionOutcome:
        """Append the pid to ``started``, hold until ``release`` exists, write the note."""
        started = utc_now()
        try:
            self.validate(parameters)
            note = context.inside(parameters["name"], "name")
            marker = context.inside(parameters["started"], "started")
            release = context.inside(parameters["release"], "release")
        except (ValueError, ActionRefused) as exc:
            return refused(str(exc))
        fd = os.open(marker, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())  # one O_APPEND write: never interleaved
        finally:
            os.close(fd)
        deadline = time.monotonic() + float(parameters.get("timeout", DEFAULT_HOLD_SECONDS))
        while not release.exists():
            left = deadline - time.monotonic()
            if context.cancel.is_set() or left <= 0:
                why = "the lease was lost" if context.cancel.is_set() else "it was not released"
                return ActionOutcome(
                    ok=False,
                    started_at=started,
                    finished_at=utc_now(),
                    error=f"stopped before writing {note.name}: {why}",
                    timed_out=left <= 0,
                )
            context.cancel.wait(min(HOLD_POLL_SECONDS, left))  # wakes at once when cancelled
        note.write_text(parameters["text"])
        said = f"held, released, wrote {note.name}\n".encode()
        return ActionOutcome(
            ok=True,
            started_at=started,
            finished_at=utc_now(),
            stdout=said,
            stdout_sha256=hashlib.sha256(said).hexdigest(),
            stdout_bytes=len(said),
            details={"file": note.name},
        )
