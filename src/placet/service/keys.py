"""The control plane's Ed25519 signing key on disk: created once with mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from placet.domain.errors import InputError, NotInitialised
from placet.domain.signing import SigningKey


def create_key_file(path: Path) -> tuple[SigningKey, bool]:
    """Load the key at ``path``, or create it (0600, atomically); return (key, created)."""
    if path.exists():
        return load_key_file(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = SigningKey.generate()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.to_pem())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile
    except FileExistsError:
        os.unlink(tmp)
        return load_key_file(path), False
    os.unlink(tmp)
    public = path.with_suffix(".pub")
    public.write_text(key.public.to_pem())
    return key, True


def load_key_file(path: Path) -> SigningKey:
    """Load a private key, refusing one that others can read."""
    if not path.exists():
        raise NotInitialised(f"no signing key at {path}: run `placet init` first")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InputError(
            str(path), f"has mode {mode:04o}; a private key must be 0600 (chmod 600 it)"
        )
    return SigningKey.from_pem(path.read_bytes())
