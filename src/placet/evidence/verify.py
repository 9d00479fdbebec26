"""Offline verification of an evidence bundle: a file and a public key, nothing else.

Imports only placet's domain and evidence modules (no server, store or network).
:func:`verify_bundle` checks, in this order, and raises :class:`VerificationError`
naming the FIRST failure: the bundle's format; its keys; the trusted key, when given;
the checkpoint signature; for each entry in turn its leaf index (below the checkpoint's
size, after the previous entry's), its inclusion proof against the checkpoint root, its
envelope signature (control-plane key, or for execution and verification the runner key
the capsule names), its statement and subject; then the rules of
:mod:`placet.evidence.record`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from placet.domain.lifecycle import Stage
from placet.domain.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    PublicKey,
    SignatureError,
    envelope_bytes,
    open_envelope,
)
from placet.evidence import merkle
from placet.evidence.bundle import CONTROL_PLANE, RUNNER, Bundle, BundleEntry, parse_bundle
from placet.evidence.checkpoint import Checkpoint, verify_checkpoint
from placet.evidence.errors import EvidenceError, MalformedEvidence, ProofError
from placet.evidence.record import RecordChecker, RecordError
from placet.evidence.statements import (
    RUNNER_STAGES,
    STAGES_BY_PREDICATE_TYPE,
    Statement,
    envelope_payload,
    parse_statement,
)

_ENVELOPE_FIELDS = {"payload", "payloadType", "signatures"}


class VerificationError(EvidenceError):
    """The bundle does not verify; the message names the first failure and where it is."""


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """What a verified bundle establishes."""

    proposal_id: str
    digest: str
    final_state: str
    stages: tuple[str, ...]
    approvers: tuple[str, ...]
    control_plane_keyid: str
    runner_keyids: tuple[str, ...]
    key_trusted: bool
    origin: str
    checkpoint_size: int
    root: str
    leaf_indexes: tuple[int, ...]
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (``placet verify --json``)."""
        return {
            "verified": True,
            "proposal_id": self.proposal_id,
            "digest": self.digest,
            "final_state": self.final_state,
            "stages": list(self.stages),
            "approvers": list(self.approvers),
            "control_plane_keyid": self.control_plane_keyid,
            "key_source": "trusted" if self.key_trusted else "bundle",
            "runner_keyids": list(self.runner_keyids),
            "checkpoint": {"origin": self.origin, "size": self.checkpoint_size, "root": self.root},
            "leaf_indexes": list(self.leaf_indexes),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """A few lines for people: what was verified and against which key."""
        source = (
            "the trusted key"
            if self.key_trusted
            else "taken from the bundle itself; pass the control plane's key to pin it"
        )
        lines = [
            f"OK: the evidence for proposal {self.proposal_id} verifies.",
            f"  digest           {self.digest}",
            f"  final state      {self.final_state}",
            f"  stages           {', '.join(self.stages)}",
            f"  approvers        {', '.join(self.approvers) or '(none needed)'}",
            f"  control plane    key {self.control_plane_keyid[:16]}… ({source})",
        ]
        lines += [f"  runner           key {keyid[:16]}…" for keyid in self.runner_keyids]
        lines.append(
            f"  checkpoint       {self.origin}, size {self.checkpoint_size}, root {self.root[:16]}…"
        )
        lines += [f"  note             {note}" for note in self.notes]
        return "\n".join(lines)


def _short(keyid: str) -> str:
    return keyid[:16] + "…"


def _keys(bundle: Bundle, trusted_key: PublicKey | None) -> tuple[PublicKey, dict[str, PublicKey]]:
    control = [key for key in bundle.keys if key.role == CONTROL_PLANE]
    if len(control) != 1:
        raise VerificationError(
            f"keys: the bundle must hold exactly one control-plane key, not {len(control)}"
        )
    ours = control[0].public
    if trusted_key is not None and ours != trusted_key:
        raise VerificationError(
            f"keys: the bundle's control-plane key {_short(ours.keyid)} is not the trusted key "
            f"{_short(trusted_key.keyid)}"
        )
    runners = {key.keyid: key.public for key in bundle.keys if key.role == RUNNER}
    return ours, runners


def _check_signature(where: str, envelope: Mapping[str, Any], key: PublicKey, role: str) -> None:
    if set(envelope) != _ENVELOPE_FIELDS:
        raise VerificationError(
            f"{where}.envelope: must have exactly payload, payloadType and signatures"
        )
    if envelope["payloadType"] != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"{where}.envelope.payloadType: must be {IN_TOTO_PAYLOAD_TYPE}")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise VerificationError(f"{where}.envelope.signatures: must hold exactly one signature")
    signature = signatures[0]
    if not isinstance(signature, dict) or set(signature) != {"keyid", "sig"}:
        raise VerificationError(f"{where}.envelope.signatures[0]: must be {{keyid, sig}}")
    if signature["keyid"] != key.keyid:
        raise VerificationError(
            f"{where}: signed by key {_short(str(signature['keyid']))}, not by the {role} key "
            f"{_short(key.keyid)}"
        )
    try:
        open_envelope(dict(envelope), [key])
    except SignatureError:
        raise VerificationError(
            f"{where}: signature does not verify under {role} key {_short(key.keyid)}"
        ) from None


def _peek_stage(envelope: Mapping[str, Any]) -> Stage | None:
    """The stage an envelope claims, read before its signature is checked, to pick the key."""
    try:
        value = json.loads(envelope_payload(envelope))
        return STAGES_BY_PREDICATE_TYPE.get(value["predicateType"])
    except (MalformedEvidence, ValueError, TypeError, KeyError, RecursionError):
        return None


def _peek_keyid(envelope: Mapping[str, Any]) -> str | None:
    """The keyid of an envelope's only signature, read before it is checked."""
    signatures = envelope.get("signatures")
    if isinstance(signatures, list) and len(signatures) == 1 and isinstance(signatures[0], dict):
        keyid = signatures[0].get("keyid")
        return keyid if isinstance(keyid, str) else None
    return None


def _runner_key(
    where: str,
    stage: Stage,
    capsule: Statement | None,
    runners: dict[str, PublicKey],
    envelope: Mapping[str, Any],
) -> PublicKey:
    """The key a runner-signed statement must verify under: the one the last capsule names,
    or, for an execution statement signed by another runner key of the bundle, that key (a
    refusal of a misdirected capsule, which the record rules then check as one)."""
    if capsule is None:
        raise VerificationError(f"{where}: a {stage.value} statement needs an earlier capsule")
    keyid = capsule.predicate.get("runner_keyid")
    if not isinstance(keyid, str) or keyid not in runners:
        raise VerificationError(
            f"{where}: the capsule's runner_keyid is not a runner key of the bundle"
        )
    signer = _peek_keyid(envelope)
    if stage is Stage.EXECUTION and signer is not None and signer != keyid and signer in runners:
        return runners[signer]
    return runners[keyid]


def _check_logged(where: str, entry: BundleEntry, previous: int, checkpoint: Checkpoint) -> None:
    """The entry's leaf index fits the checkpoint and log order; its proof leads to the root."""
    if entry.leaf_index >= checkpoint.size:
        raise VerificationError(
            f"{where}.leaf_index: {entry.leaf_index} is not below the checkpoint's tree size "
            f"{checkpoint.size}"
        )
    if entry.leaf_index <= previous:
        raise VerificationError(
            f"{where}.leaf_index: {entry.leaf_index} does not come after {previous}; "
            "entries must be in log order"
        )
    try:
        leaf = merkle.leaf_hash(envelope_bytes(entry.envelope))
    except (ValueError, TypeError, RecursionError) as exc:
        raise VerificationError(f"{where}.envelope: cannot be canonicalised: {exc}") from None
    try:
        merkle.verify_inclusion(
            entry.leaf_index, checkpoint.size, leaf, entry.inclusion_proof, checkpoint.root
        )
    except ProofError as exc:
        raise VerificationError(f"{where}.inclusion_proof: {exc}") from None


def _read_statement(where: str, envelope: Mapping[str, Any]) -> Statement:
    try:
        return parse_statement(envelope_payload(envelope))
    except MalformedEvidence as exc:
        raise VerificationError(f"{where}.statement.{exc.field}: {exc.problem}") from None


def verify_bundle(bundle: Any, trusted_key: PublicKey | None = None) -> VerificationReport:
    """Verify a bundle (the parsed JSON) offline; raise VerificationError at the first failure.

    Without ``trusted_key`` the bundle's own control-plane key is used and the report says so.
    """
    try:
        parsed = parse_bundle(bundle)
    except MalformedEvidence as exc:
        raise VerificationError(str(exc)) from None
    control, runners = _keys(parsed, trusted_key)
    try:
        checkpoint = verify_checkpoint(parsed.checkpoint, control)
    except EvidenceError as exc:
        raise VerificationError(f"checkpoint: {exc}") from None

    statements: list[Statement] = []
    signers: list[str | None] = []
    capsule: Statement | None = None
    previous = -1
    for i, entry in enumerate(parsed.entries):
        where = f"entries[{i}]"
        _check_logged(where, entry, previous, checkpoint)
        previous = entry.leaf_index
        stage = _peek_stage(entry.envelope)
        signer: str | None = None
        if stage is not None and stage in RUNNER_STAGES:
            runner = _runner_key(where, stage, capsule, runners, entry.envelope)
            _check_signature(where, entry.envelope, runner, "runner")
            signer = runner.keyid
        else:
            _check_signature(where, entry.envelope, control, "control-plane")
        statement = _read_statement(where, entry.envelope)
        if statement.proposal_id != parsed.proposal_id:
            raise VerificationError(
                f"{where}.statement.subject: is about proposal {statement.proposal_id}, "
                f"not {parsed.proposal_id}"
            )
        if statements and statement.digest != statements[0].digest:
            raise VerificationError(
                f"{where}.statement.subject: digest {statement.digest[:16]}… differs from "
                f"{statements[0].digest[:16]}… in entries[0]"
            )
        if statement.stage is Stage.CAPSULE:
            capsule = statement
        statements.append(statement)
        signers.append(signer)

    checker = RecordChecker(statements[0].digest, set(runners))
    try:
        for i, (statement, signer) in enumerate(zip(statements, signers, strict=True)):
            checker.add(f"entries[{i}]", statement, signer)
        facts = checker.finish()
    except RecordError as exc:
        raise VerificationError(str(exc)) from None
    return VerificationReport(
        proposal_id=parsed.proposal_id,
        digest=statements[0].digest,
        final_state=facts.final_state,
        stages=tuple(facts.stages),
        approvers=tuple(facts.approvers),
        control_plane_keyid=control.keyid,
        runner_keyids=tuple(facts.runner_keyids),
        key_trusted=trusted_key is not None,
        origin=checkpoint.origin,
        checkpoint_size=checkpoint.size,
        root=checkpoint.root.hex(),
        leaf_indexes=tuple(entry.leaf_index for entry in parsed.entries),
        notes=tuple(facts.notes),
    )
