"""Trust on first use: the control-plane key a runner saw first, recorded in its state dir.

Without ``--control-plane-key``, the first successful registration writes the key the server
presented to ``DIR/control-plane.pub``; from then on that key is pinned and a server that
presents a different one is refused.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from placet.domain.signing import PublicKey
from placet.runners.keys import load_public_key

PINNED_FILE = "control-plane.pub"


def pinned_path(directory: Path) -> Path:
    """Where the trusted control-plane key of the runner with state dir ``directory`` lives."""
    return directory / PINNED_FILE


def load_pinned(directory: Path) -> PublicKey | None:
    """The control-plane key recorded on first use, or None before the first registration."""
    path = pinned_path(directory)
    if not path.exists():
        return None
    return load_public_key(path)


def record_pinned(directory: Path, key: PublicKey) -> bool:
    """Record ``key`` as trusted unless a key is already recorded; True if this one was."""
    path = pinned_path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(key.b64 + "\n")
    try:
        os.link(tmp, path)  # never replaces a key recorded earlier (or by another process)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True
