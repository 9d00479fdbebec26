"""Capsules: the control plane's signed, expiring order to one runner to run one proposal.

``issue_capsule`` is called by the service when it grants a lease; ``check_capsule`` is
called by the runner before it runs anything, and refuses (fails closed) on any doubt.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from placet.domain.canonical import canonical_json, digest_of, sha256_hex
from placet.domain.errors import InputError, PlacetError
from placet.domain.labels import check_selector, matches
from placet.domain.proposal import ProposalContent, parse_proposal
from placet.domain.signing import (
    PublicKey,
    SignatureError,
    SigningKey,
    envelope_bytes,
    open_envelope,
)
from placet.runners.times import format_time, parse_time

CAPSULE_PAYLOAD_TYPE = "application/vnd.placet.capsule+json"
CAPSULE_VERSION = 2
_NONCE = re.compile(r"^[0-9a-f]{32,128}$")

_FIELDS = frozenset(
    {
        "capsule_version",
        "proposal_id",
        "proposal_digest",
        "proposal",
        "runner_id",
        "lease_id",
        "fencing_token",
        "issued_at",
        "expires_at",
        "target",
        "nonce",
    }
)


class Refusal(enum.StrEnum):
    """Why a runner refused a capsule; the runner decides from this whether to report."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_A_CAPSULE = "not_a_capsule"
    WRONG_RUNNER = "wrong_runner"
    WRONG_LEASE = "wrong_lease"
    DIGEST_MISMATCH = "digest_mismatch"
    EXPIRED = "expired"
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class CapsuleClaim:
    """What a refused capsule claims about itself (NOT verified): enough to report a refusal."""

    proposal_id: str
    proposal_digest: str
    runner_id: str
    kind: str = ""


class CapsuleRefused(PlacetError):
    """The runner will not run this capsule; ``str(exc)`` is ``"capsule refused: <reason>"``."""

    def __init__(self, code: Refusal, reason: str, claim: CapsuleClaim | None = None) -> None:
        super().__init__(f"capsule refused: {reason}")
        self.code = code
        self.reason = reason
        self.claim = claim


@dataclass(frozen=True, slots=True)
class Capsule:
    """A capsule that passed every check: signed, unexpired, ours, and bound to its proposal."""

    proposal_id: str
    proposal_digest: str
    proposal: ProposalContent
    runner_id: str
    lease_id: str
    fencing_token: int
    issued_at: datetime
    expires_at: datetime
    digest: str
    signed_by: str
    target: Mapping[str, Any]
    nonce: str


def new_nonce() -> str:
    """A fresh random capsule nonce (128 bits, hex): the runner runs each nonce once."""
    return secrets.token_hex(16)


def _check_target(target: Any) -> dict[str, Any]:
    """``{"runner_id": id}`` or ``{"selector": {key: value}}``; ValueError otherwise."""
    if not isinstance(target, Mapping) or len(target) != 1:
        raise ValueError("target must be {runner_id} or {selector}")
    if "runner_id" in target:
        if not isinstance(target["runner_id"], str) or not target["runner_id"]:
            raise ValueError("target.runner_id must be a non-empty string")
        return {"runner_id": target["runner_id"]}
    if "selector" in target:
        try:
            return {"selector": check_selector(target["selector"], "target.selector")}
        except InputError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError("target must be {runner_id} or {selector}")


def capsule_digest(envelope: Mapping[str, Any]) -> str:
    """SHA-256 hex of the capsule envelope's ledger bytes (RFC 8785 JSON of the envelope)."""
    return sha256_hex(envelope_bytes(envelope))


def issue_capsule(
    key: SigningKey,
    *,
    proposal_id: str,
    proposal: Mapping[str, Any],
    proposal_digest: str,
    runner_id: str,
    lease_id: str,
    fencing_token: int,
    issued_at: datetime,
    ttl: timedelta,
    target: Mapping[str, Any] | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Sign a capsule for ``runner_id`` with the control-plane key; returns the DSSE envelope.

    ``target`` says why it went to that runner: ``{"runner_id"}`` (the default) or the label
    ``{"selector"}`` it matched; ``nonce`` is fresh random unless given. Raises ValueError when
    the inputs could only produce a capsule every runner refuses.
    """
    if digest_of(dict(proposal)) != proposal_digest:
        raise ValueError("proposal_digest is not the digest of proposal")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    if isinstance(fencing_token, bool) or not isinstance(fencing_token, int):
        raise ValueError("fencing_token must be an integer")
    checked_target = _check_target({"runner_id": runner_id} if target is None else target)
    nonce = new_nonce() if nonce is None else nonce
    if not _NONCE.match(nonce):
        raise ValueError("nonce must be 32 to 128 lowercase hex digits")
    payload = {
        "capsule_version": CAPSULE_VERSION,
        "proposal_id": proposal_id,
        "proposal_digest": proposal_digest,
        "proposal": dict(proposal),
        "runner_id": runner_id,
        "lease_id": lease_id,
        "fencing_token": fencing_token,
        "issued_at": format_time(issued_at),
        "expires_at": format_time(issued_at + ttl),
        "target": checked_target,
        "nonce": nonce,
    }
    return key.sign_envelope(canonical_json(payload), CAPSULE_PAYLOAD_TYPE)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise CapsuleRefused(Refusal.MALFORMED, f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CapsuleRefused(Refusal.MALFORMED, f"{what} is not valid base64") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_payload(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise CapsuleRefused(Refusal.MALFORMED, "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise CapsuleRefused(Refusal.MALFORMED, "payload is not a JSON object")
    return payload


def read_claim(envelope: Any) -> CapsuleClaim | None:
    """What the capsule says about itself, without checking anything; None when unreadable."""
    try:
        if not isinstance(envelope, dict):
            return None
        payload = _decode_payload(_b64(envelope.get("payload"), "payload"))
    except CapsuleRefused:
        return None
    proposal_id, digest, runner = (
        payload.get(k) for k in ("proposal_id", "proposal_digest", "runner_id")
    )
    if not (isinstance(proposal_id, str) and isinstance(digest, str) and isinstance(runner, str)):
        return None
    if not (proposal_id and digest and runner):
        return None
    proposal = payload.get("proposal")
    kind = proposal.get("kind") if isinstance(proposal, dict) else None
    return CapsuleClaim(proposal_id, digest, runner, kind if isinstance(kind, str) else "")


def _check_signature(
    envelope: Any, keys: list[PublicKey], claim: CapsuleClaim | None
) -> tuple[bytes, str, str]:
    if not isinstance(envelope, dict):
        raise CapsuleRefused(Refusal.MALFORMED, "the capsule is not a JSON object")
    for field in ("payload", "payloadType", "signatures"):
        if field not in envelope:
            raise CapsuleRefused(Refusal.MALFORMED, f"the envelope has no {field}", claim)
    _b64(envelope["payload"], "payload")
    if not isinstance(envelope["payloadType"], str):
        raise CapsuleRefused(Refusal.MALFORMED, "payloadType is not a string", claim)
    signatures = envelope["signatures"]
    if not isinstance(signatures, list):
        raise CapsuleRefused(Refusal.MALFORMED, "signatures is not a list", claim)
    if not signatures:
        raise CapsuleRefused(Refusal.UNSIGNED, "the capsule carries no signature", claim)
    keyids = []
    for i, signature in enumerate(signatures):
        if not isinstance(signature, dict) or not isinstance(signature.get("keyid"), str):
            raise CapsuleRefused(Refusal.MALFORMED, f"signatures[{i}] has no keyid", claim)
        _b64(signature.get("sig"), f"signatures[{i}].sig")
        keyids.append(signature["keyid"])
    if not keys:
        raise CapsuleRefused(Refusal.UNKNOWN_KEY, "no control-plane key is pinned", claim)
    pinned = {key.keyid for key in keys}
    if not pinned & set(keyids):
        shown = ", ".join(k[:16] for k in keyids)
        raise CapsuleRefused(
            Refusal.UNKNOWN_KEY, f"signed by key {shown}, not a pinned control-plane key", claim
        )
    try:
        return open_envelope(envelope, keys)
    except SignatureError:
        raise CapsuleRefused(
            Refusal.BAD_SIGNATURE,
            "the signature does not verify under the control-plane key"
            " (payload or signature altered)",
            claim,
        ) from None


def _string(payload: Mapping[str, Any], field: str, claim: CapsuleClaim | None) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise CapsuleRefused(Refusal.MALFORMED, f"{field} must be a non-empty string", claim)
    return value


def _proposal(value: Any, claim: CapsuleClaim | None) -> ProposalContent:
    if not isinstance(value, dict):
        raise CapsuleRefused(Refusal.MALFORMED, "proposal must be an object", claim)
    body = dict(value)
    agent = body.pop("agent", None)
    if not isinstance(agent, str) or not agent:
        raise CapsuleRefused(Refusal.MALFORMED, "proposal.agent must be a string", claim)
    try:
        return parse_proposal(body, agent)
    except InputError as exc:
        raise CapsuleRefused(Refusal.MALFORMED, f"proposal.{exc}", claim) from None


@dataclass(frozen=True, slots=True)
class SignedTerms:
    """The lease a genuine capsule (signed by a pinned control-plane key) was issued under."""

    proposal_id: str
    proposal_digest: str
    runner_id: str
    lease_id: str
    fencing_token: int
    kind: str


def signed_terms(envelope: Any, control_plane_keys: Iterable[PublicKey]) -> SignedTerms | None:
    """Who and which lease a capsule names, when it is signed by a pinned control-plane key;
    None otherwise. A runner reports a genuine capsule meant for another runner with these
    (its refusal names the leaked lease), never anything it could not authenticate."""
    keys = list(control_plane_keys)
    if not keys or not isinstance(envelope, dict):
        return None
    try:
        raw, payload_type, _ = open_envelope(envelope, keys)
    except SignatureError:
        return None
    if payload_type != CAPSULE_PAYLOAD_TYPE:
        return None
    try:
        payload = _decode_payload(raw)
    except CapsuleRefused:
        return None
    strings = [payload.get(k) for k in ("proposal_id", "proposal_digest", "runner_id", "lease_id")]
    token = payload.get("fencing_token")
    if not all(isinstance(v, str) and v for v in strings):
        return None
    if isinstance(token, bool) or not isinstance(token, int):
        return None
    proposal = payload.get("proposal")
    kind = proposal.get("kind") if isinstance(proposal, dict) else None
    proposal_id, digest, runner_id, lease_id = (str(v) for v in strings)
    return SignedTerms(
        proposal_id, digest, runner_id, lease_id, token, kind if isinstance(kind, str) else ""
    )


def check_capsule(
    envelope: Any,
    control_plane_keys: Iterable[PublicKey],
    runner_id: str,
    now: datetime,
    *,
    lease_id: str | None = None,
    fencing_token: int | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Capsule:
    """Check a capsule before running it; raise CapsuleRefused saying why it must not run.

    Checks, in order: envelope shape, a signature by a pinned control-plane key, the payload
    type and fields, that it names this runner and its target is this runner (a selector
    target must match ``labels`` when they are given), and, when given, this lease and token,
    that the proposal matches its digest, and that it has not expired at ``now``. Replays
    (a nonce seen before) are the runner's nonce store's to refuse.
    """
    claim = read_claim(envelope)
    payload_bytes, payload_type, signed_by = _check_signature(
        envelope, list(control_plane_keys), claim
    )
    if payload_type != CAPSULE_PAYLOAD_TYPE:
        raise CapsuleRefused(
            Refusal.NOT_A_CAPSULE, f"payloadType is {payload_type!r}, not a capsule", claim
        )
    payload = _decode_payload(payload_bytes)
    unknown = set(payload) - _FIELDS
    if unknown:
        raise CapsuleRefused(Refusal.MALFORMED, f"unknown field {sorted(unknown)[0]!r}", claim)
    version = payload.get("capsule_version")
    if version != CAPSULE_VERSION or isinstance(version, bool):
        raise CapsuleRefused(
            Refusal.MALFORMED, f"capsule_version {version!r} is not supported", claim
        )
    proposal_id = _string(payload, "proposal_id", claim)
    proposal_digest = _string(payload, "proposal_digest", claim)
    capsule_runner = _string(payload, "runner_id", claim)
    capsule_lease = _string(payload, "lease_id", claim)
    token = payload.get("fencing_token")
    if isinstance(token, bool) or not isinstance(token, int):
        raise CapsuleRefused(Refusal.MALFORMED, "fencing_token must be an integer", claim)
    try:
        issued_at = parse_time(payload.get("issued_at"), "issued_at")
        expires_at = parse_time(payload.get("expires_at"), "expires_at")
    except ValueError as exc:
        raise CapsuleRefused(Refusal.MALFORMED, str(exc), claim) from None
    if expires_at <= issued_at:
        raise CapsuleRefused(Refusal.MALFORMED, "expires_at is not after issued_at", claim)
    nonce = payload.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise CapsuleRefused(Refusal.MALFORMED, "nonce must be 32 to 128 hex digits", claim)
    try:
        target = _check_target(payload.get("target"))
    except ValueError as exc:
        raise CapsuleRefused(Refusal.MALFORMED, str(exc), claim) from None
    if capsule_runner != runner_id:
        raise CapsuleRefused(
            Refusal.WRONG_RUNNER, f"it is for runner {capsule_runner}, not {runner_id}", claim
        )
    if target.get("runner_id", runner_id) != runner_id:
        raise CapsuleRefused(
            Refusal.WRONG_RUNNER,
            f"its target is runner {target['runner_id']}, not {runner_id}",
            claim,
        )
    if "selector" in target and labels is not None and not matches(target["selector"], labels):
        shown = ",".join(f"{k}={v}" for k, v in target["selector"].items())
        raise CapsuleRefused(
            Refusal.WRONG_RUNNER, f"its target {shown} does not match this runner's labels", claim
        )
    if lease_id is not None and capsule_lease != lease_id:
        raise CapsuleRefused(
            Refusal.WRONG_LEASE, f"it is for lease {capsule_lease}, not {lease_id}", claim
        )
    if fencing_token is not None and token != fencing_token:
        raise CapsuleRefused(
            Refusal.WRONG_LEASE, f"its fencing token {token} is not {fencing_token}", claim
        )
    try:
        actual = digest_of(payload.get("proposal"))
    except Exception:  # rfc8785 rejects values (e.g. huge integers) it cannot canonicalise
        raise CapsuleRefused(
            Refusal.MALFORMED, "the proposal cannot be canonicalised", claim
        ) from None
    if actual != proposal_digest:
        raise CapsuleRefused(
            Refusal.DIGEST_MISMATCH, "the proposal does not match proposal_digest", claim
        )
    proposal = _proposal(payload.get("proposal"), claim)
    if proposal.digest != proposal_digest:
        raise CapsuleRefused(Refusal.MALFORMED, "the proposal is not in its canonical form", claim)
    if now >= expires_at:
        raise CapsuleRefused(Refusal.EXPIRED, f"it expired at {format_time(expires_at)}", claim)
    return Capsule(
        proposal_id=proposal_id,
        proposal_digest=proposal_digest,
        proposal=proposal,
        runner_id=capsule_runner,
        lease_id=capsule_lease,
        fencing_token=token,
        issued_at=issued_at,
        expires_at=expires_at,
        digest=capsule_digest(envelope),
        signed_by=signed_by,
        target=target,
        nonce=nonce,
    )
