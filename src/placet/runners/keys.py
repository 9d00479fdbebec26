"""The runner's key file: an Ed25519 PKCS#8 PEM, created 0600 atomically, refused if exposed."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from placet.domain.errors import PlacetError
from placet.domain.signing import PublicKey, SignatureError, SigningKey


class KeyFileError(PlacetError):
    """A key file is missing, unreadable, exposed to other users, or not an Ed25519 key."""


def _check_private(path: Path) -> None:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path}: the key file is not a regular file")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise KeyFileError(f"{path}: the key file belongs to another user")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: the key file is accessible by group or others (mode {mode:04o});"
            f" run 'chmod 600 {path}' or remove it to create a new key"
        )


def load_key(path: Path) -> SigningKey:
    """Load the runner key from ``path``, refusing a file that group or others can access."""
    try:
        _check_private(path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file: {exc.strerror}") from None
    try:
        return SigningKey.from_pem(data)
    except SignatureError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def _write_new(path: Path, key: SigningKey) -> bool:
    """Write ``key`` to ``path`` unless a file appears there first; True if ours was written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key.to_pem())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces a key another process just wrote
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_or_create_key(path: Path) -> SigningKey:
    """The runner key at ``path``; a new one is generated and written 0600 if there is none."""
    if path.exists():
        return load_key(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = SigningKey.generate()
        if _write_new(path, key):
            return key
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create the key file: {exc.strerror}") from None
    return load_key(path)


def load_public_key(path: Path) -> PublicKey:
    """Read a pinned public key file (PEM or base64 of the raw 32 bytes)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the public key: {exc.strerror}") from None
    try:
        return PublicKey.from_text(text)
    except SignatureError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
