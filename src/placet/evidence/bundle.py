"""The evidence bundle: one JSON file holding a proposal's signed record and its proofs.

::

    {"format": "placet-evidence/v1", "proposal_id": str, "checkpoint": <signed note>,
     "keys": [{"keyid", "algorithm": "ed25519", "public_key": b64, "role"}],
     "entries": [{"leaf_index": int, "envelope": {...}, "inclusion_proof": [hex, ...]}]}

:func:`build_bundle` writes one; :func:`parse_bundle` reads one back, checking its shape
and naming the first bad field (``entries[3].inclusion_proof[0]: ...``). Whether the
contents are true is :mod:`placet.evidence.verify`'s job.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from placet.domain.signing import PublicKey
from placet.evidence.errors import MalformedEvidence
from placet.evidence.merkle import HASH_SIZE, MAX_PROOF

FORMAT = "placet-evidence/v1"
CONTROL_PLANE = "control-plane"
RUNNER = "runner"
ROLES = (CONTROL_PLANE, RUNNER)
ALGORITHM = "ed25519"
MAX_ENTRIES = 10_000

_HEX_HASH = re.compile(r"^[0-9a-f]{64}$")
_TOP = ("format", "proposal_id", "checkpoint", "keys", "entries")
_KEY_FIELDS = ("keyid", "algorithm", "public_key", "role")
_ENTRY_FIELDS = ("leaf_index", "envelope", "inclusion_proof")


@dataclass(frozen=True, slots=True)
class BundleKey:
    """A public key the bundle's signatures are checked with, and its role."""

    public: PublicKey
    role: str

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def as_dict(self) -> dict[str, str]:
        return {
            "keyid": self.keyid,
            "algorithm": ALGORITHM,
            "public_key": self.public.b64,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One logged envelope: its leaf index, the envelope, and its audit path to the checkpoint."""

    leaf_index: int
    envelope: Mapping[str, Any]
    inclusion_proof: tuple[bytes, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "envelope": dict(self.envelope),
            "inclusion_proof": [node.hex() for node in self.inclusion_proof],
        }


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed bundle (its shape checked, not its truth)."""

    proposal_id: str
    checkpoint: str
    keys: tuple[BundleKey, ...]
    entries: tuple[BundleEntry, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "proposal_id": self.proposal_id,
            "checkpoint": self.checkpoint,
            "keys": [key.as_dict() for key in self.keys],
            "entries": [entry.as_dict() for entry in self.entries],
        }


def entry(leaf_index: int, envelope: Mapping[str, Any], proof: Sequence[bytes]) -> BundleEntry:
    """A bundle entry from a log index, the envelope stored there and its inclusion proof."""
    return BundleEntry(leaf_index, envelope, tuple(bytes(node) for node in proof))


def build_bundle(
    proposal_id: str, checkpoint: str, keys: Iterable[BundleKey], entries: Iterable[BundleEntry]
) -> dict[str, Any]:
    """The bundle dict for one proposal; entries are written in leaf order."""
    ordered = sorted(entries, key=lambda e: e.leaf_index)
    bundle = Bundle(proposal_id, checkpoint, tuple(keys), tuple(ordered))
    return parse_bundle(bundle.as_dict()).as_dict()  # refuse to write what would not parse


def _object(value: Any, field: str, fields: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedEvidence(field, "must be a JSON object")
    prefix = "" if field == "bundle" else field + "."
    for name in fields:
        if name not in value:
            raise MalformedEvidence(prefix + name, "is missing")
    for name in value:
        if name not in fields:
            raise MalformedEvidence(prefix + str(name), "is not a known field")
    return value


def _list(value: Any, field: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedEvidence(field, "must be a list")
    if len(value) > limit:
        raise MalformedEvidence(field, f"has more than {limit} items")
    return value


def _key(value: Any, field: str) -> BundleKey:
    record = _object(value, field, _KEY_FIELDS)
    if record["algorithm"] != ALGORITHM:
        raise MalformedEvidence(f"{field}.algorithm", f"must be {ALGORITHM!r}")
    if record["role"] not in ROLES:
        raise MalformedEvidence(f"{field}.role", f"must be one of {', '.join(ROLES)}")
    encoded = record["public_key"]
    try:
        raw = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise MalformedEvidence(f"{field}.public_key", "must be base64 of a raw 32-byte key")
    public = PublicKey(raw)
    if record["keyid"] != public.keyid:
        raise MalformedEvidence(f"{field}.keyid", "is not the SHA-256 of the public key")
    return BundleKey(public, record["role"])


def _entry(value: Any, field: str) -> BundleEntry:
    record = _object(value, field, _ENTRY_FIELDS)
    index = record["leaf_index"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise MalformedEvidence(f"{field}.leaf_index", "must be a non-negative integer")
    if not isinstance(record["envelope"], dict):
        raise MalformedEvidence(f"{field}.envelope", "must be a JSON object")
    proof = _list(record["inclusion_proof"], f"{field}.inclusion_proof", MAX_PROOF)
    nodes = []
    for i, node in enumerate(proof):
        if not isinstance(node, str) or not _HEX_HASH.match(node):
            raise MalformedEvidence(
                f"{field}.inclusion_proof[{i}]", f"must be {HASH_SIZE} bytes in lowercase hex"
            )
        nodes.append(bytes.fromhex(node))
    return BundleEntry(index, record["envelope"], tuple(nodes))


def parse_bundle(data: Any) -> Bundle:
    """Check a bundle's shape; MalformedEvidence names the first bad field."""
    top = _object(data, "bundle", _TOP)
    if top["format"] != FORMAT:
        raise MalformedEvidence("format", f"must be {FORMAT!r}")
    if not isinstance(top["proposal_id"], str) or not top["proposal_id"]:
        raise MalformedEvidence("proposal_id", "must be a non-empty string")
    if not isinstance(top["checkpoint"], str) or not top["checkpoint"]:
        raise MalformedEvidence("checkpoint", "must be the signed checkpoint note text")
    raw_keys = _list(top["keys"], "keys", 64)
    keys = tuple(_key(value, f"keys[{i}]") for i, value in enumerate(raw_keys))
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key.keyid in seen:
            raise MalformedEvidence(f"keys[{i}].keyid", "appears twice")
        seen.add(key.keyid)
    raw_entries = _list(top["entries"], "entries", MAX_ENTRIES)
    if not raw_entries:
        raise MalformedEvidence("entries", "is empty: a bundle records at least the proposal")
    entries = tuple(_entry(value, f"entries[{i}]") for i, value in enumerate(raw_entries))
    return Bundle(top["proposal_id"], top["checkpoint"], keys, entries)
