"""Offline verification of an evidence bundle file: no server, no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from placet.domain.errors import InputError
from placet.domain.signing import PublicKey, SignatureError
from placet.evidence.errors import EvidenceError
from placet.evidence.verify import VerificationReport, verify_bundle

__all__ = ["EvidenceError", "read_bundle", "read_key", "verify_file"]


def read_bundle(path: Path) -> Any:
    """The parsed JSON of a bundle file, or an InputError naming the problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(str(path), f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError(str(path), "JSON nested too deeply to be a bundle") from None


def read_key(path: Path) -> PublicKey:
    """A trusted control-plane public key from a PEM or base64 file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError("--key", f"cannot read {path}: {exc.strerror}") from None
    try:
        return PublicKey.from_text(text)
    except SignatureError as exc:
        raise InputError("--key", str(exc)) from None


def verify_file(bundle_path: Path, key_path: Path | None = None) -> VerificationReport:
    """Verify ``bundle_path``; raises the evidence room's VerificationError on the first failure."""
    trusted = read_key(key_path) if key_path else None
    return verify_bundle(read_bundle(bundle_path), trusted)
