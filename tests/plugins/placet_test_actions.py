"""A placet action plugin shipped with the tests: kind ``write-note`` writes a file.

It is discovered through ``placet_test_actions-1.0.dist-info/entry_points.txt`` when this
directory is on ``sys.path`` (PYTHONPATH), exactly as an installed package's would be.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from placet.runners.actions import ActionContext, ActionOutcome, ActionRefused, refused
from placet.runners.times import utc_now


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
