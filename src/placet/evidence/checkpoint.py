"""Checkpoints: the C2SP tlog-checkpoint signed note that commits to the log's size and root.

A checkpoint reads::

    <origin>
    <tree size>
    <base64 root>

    — <origin> <base64(key id || Ed25519 signature)>

signed with Ed25519 over the three body lines (each ending in a newline), with key name
equal to the origin and key id = SHA-256(name || 0x0A || 0x01 || public key)[:4]
(c2sp.org/signed-note). Parsing is strict: placet writes no extension lines, so a body
of other than three lines is rejected. As the note format requires, signature lines from
other keys (witness cosignatures, a rotated key) are ignored, but must be well formed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from placet.domain.signing import PublicKey, SigningKey
from placet.evidence import merkle
from placet.evidence.errors import CheckpointError, ProofError

ED25519_SIGNATURE_TYPE = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 32
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log state: who runs the log (origin), how many leaves, and the root over them."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The note text that is signed: origin, size and base64 root, each line ending in LF."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id and signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


def key_id(name: str, public: PublicKey) -> bytes:
    """The note key id of an Ed25519 key under ``name``: SHA-256(name || LF || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + public.raw).digest()[:4]


def verifier_key(name: str, public: PublicKey) -> str:
    """The note verifier key ``name+<key id hex>+base64(0x01 || key)`` other note tools read.

    For example golang.org/x/mod/sumdb/note.NewVerifier accepts it as is.
    """
    encoded = base64.b64encode(ED25519_SIGNATURE_TYPE + public.raw).decode()
    return f"{name}+{key_id(name, public).hex()}+{encoded}"


def _check_name(name: str, what: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise CheckpointError(f"the {what} {name!r} is empty or holds a space or '+'")


def sign_checkpoint(origin: str, size: int, root: bytes, key: SigningKey) -> str:
    """The signed checkpoint note for a log state, signed by ``key`` under the origin's name."""
    _check_name(origin, "origin")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise CheckpointError(f"tree size must be a non-negative integer, not {size!r}")
    if len(root) != merkle.HASH_SIZE:
        raise CheckpointError(f"the root must be {merkle.HASH_SIZE} bytes, not {len(root)}")
    body = Checkpoint(origin, size, bytes(root)).body()
    signature = key_id(origin, key.public) + key.sign(body.encode())
    return f"{body}\n{SIGNATURE_PREFIX}{origin} {base64.b64encode(signature).decode()}\n"


def _b64(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"the {what} is not base64") from None
    if base64.b64encode(raw).decode() != value:
        raise CheckpointError(f"the {what} is not canonical base64")
    return raw


def _parse_signature(line: str, number: int) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError(f"signature line {number} does not start with an em dash and space")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise CheckpointError(f"signature line {number} is not '— <key name> <base64>'")
    name, encoded = parts
    _check_name(name, f"key name on signature line {number}")
    raw = _b64(encoded, f"signature on line {number}")
    if len(raw) < 5:
        raise CheckpointError(f"signature line {number} is too short to hold a key id")
    return NoteSignature(name, raw[:4], raw[4:])


def split_note(text: str) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse a checkpoint note into its log state and signature lines, checking only the form."""
    if not isinstance(text, str):
        raise CheckpointError("the checkpoint must be text")
    if _CONTROL.search(text):
        raise CheckpointError("the checkpoint holds a control character other than newline")
    if not text.endswith("\n"):
        raise CheckpointError("the checkpoint must end with a newline")
    body, sep, signatures = text.rpartition("\n\n")
    if not sep:
        raise CheckpointError("the checkpoint has no blank line before its signatures")
    lines = body.split("\n")
    if len(lines) != 3:
        raise CheckpointError(
            f"the checkpoint body has {len(lines)} lines, not 3 (origin, size, root)"
        )
    origin, size_text, root_text = lines
    _check_name(origin, "origin")
    if not _SIZE.match(size_text):
        raise CheckpointError(f"the tree size {size_text!r} is not a decimal number")
    root = _b64(root_text, "root hash")
    if len(root) != merkle.HASH_SIZE:
        raise CheckpointError(f"the root hash has {len(root)} bytes, not {merkle.HASH_SIZE}")
    sig_lines = signatures[:-1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise CheckpointError(f"the checkpoint has more than {MAX_SIGNATURES} signatures")
    parsed = [_parse_signature(line, i + 1) for i, line in enumerate(sig_lines)]
    return Checkpoint(origin, int(size_text), root), parsed


def parse_checkpoint(text: str) -> Checkpoint:
    """The log state a checkpoint claims, WITHOUT checking its signature (see verify_checkpoint)."""
    return split_note(text)[0]


def verify_checkpoint(text: str, public_key: PublicKey, origin: str | None = None) -> Checkpoint:
    """Check a checkpoint's form and its signature by ``public_key``; return the log state.

    The key is looked up under the checkpoint's origin line as key name; ``origin``, when
    given, must equal that line.
    """
    checkpoint, signatures = split_note(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the checkpoint is from {checkpoint.origin!r}, not {origin!r}")
    wanted = key_id(checkpoint.origin, public_key)
    body = checkpoint.body().encode()
    verified = False
    for sig in signatures:
        if sig.name != checkpoint.origin or sig.key_id != wanted:
            continue  # another key's signature: the note format says to ignore it
        if not public_key.verify(sig.signature, body):
            raise CheckpointError(
                f"the checkpoint signature does not verify under key {public_key.keyid[:16]}…"
            )
        verified = True
    if not verified:
        raise CheckpointError(
            f"the checkpoint has no signature by key {public_key.keyid[:16]}… "
            f"named {checkpoint.origin!r} (key id {wanted.hex()})"
        )
    return checkpoint


def verify_consistent(earlier: Checkpoint, later: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``later`` extends ``earlier`` (same origin, RFC 9162 consistency proof).

    Verify each checkpoint's signature first; this checks only that the two agree.
    """
    if earlier.origin != later.origin:
        raise CheckpointError(
            f"the checkpoints are from different logs: {earlier.origin!r} and {later.origin!r}"
        )
    try:
        merkle.verify_consistency(earlier.size, later.size, earlier.root, later.root, proof)
    except ProofError as exc:
        raise CheckpointError(
            f"the checkpoint of size {later.size} is not consistent with the one of size "
            f"{earlier.size}: {exc}"
        ) from None
