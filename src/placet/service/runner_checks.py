"""Checks of what runners send the control plane: their kinds and keys, lease requests,
report fields and signed refusals. Pure functions; ``service/runners.py`` applies them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from placet.domain import actions
from placet.domain.canonical import digest_of
from placet.domain.errors import Forbidden, InputError
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.signing import PublicKey, SignatureError, open_envelope
from placet.evidence.errors import MalformedEvidence
from placet.evidence.statements import Statement, statement_of

# How many authorized proposals one lease request looks at per page, and how many pages,
# before it reports idle (proposals other runners' labels match are skipped).
LEASE_CANDIDATES = 50
LEASE_PAGES = 20
# The longest a lease request may wait for work (long poll), and how often it probes the
# database for work made leasable by another process (this process's own wakes it at once).
MAX_LEASE_WAIT = 30.0
LEASE_PROBE_SECONDS = 0.5
# The most capsules one lease request may take, and reports one batch may carry.
MAX_LEASES = 32
MAX_REPORTS = 64
KEY_BY_ADMIN = "admin"
KEY_BY_SELF = "self"


def require_runner(principal: Principal, attempt: str) -> None:
    if principal.kind is not PrincipalKind.RUNNER:
        raise Forbidden(principal.name, attempt, "only runners lease and report work")


def known_kinds(value: Any) -> list[str]:
    """The kinds a runner names that this control plane knows, sorted. A kind only the
    runner has (a plugin not installed here) is left out: no proposal of it can exist here.
    InputError when the list is malformed or names no known kind."""
    if not isinstance(value, list) or not value:
        raise InputError("kinds", "must be a non-empty list of action kinds")
    known: list[str] = []
    for i, kind in enumerate(value):
        if not isinstance(kind, str):
            raise InputError(f"kinds[{i}]", "must be a string")
        try:
            actions.get(kind)
        except InputError:
            continue
        known.append(kind)
    if not known:
        raise InputError(
            "kinds",
            f"names no action kind this control plane knows (known: {', '.join(actions.names())})",
        )
    return sorted(set(known))


def public_key_of(value: Any) -> PublicKey:
    if not isinstance(value, str):
        raise InputError("public_key", "must be the base64 of a raw Ed25519 public key")
    try:
        return PublicKey.from_b64(value)
    except SignatureError as exc:
        raise InputError("public_key", str(exc)) from None


def is_refusal(predicate: Mapping[str, Any]) -> bool:
    """A runner's refusal of the capsule it was handed (nothing ran; it can only fail the
    proposal). Its capsule_digest is what the runner received, which differs when tampered."""
    error = predicate.get("error")
    return (
        predicate.get("ok") is False
        and isinstance(error, str)
        and error.startswith("capsule refused:")
    )


def signed_refusal(envelope: Any, key: PublicKey, runner: Principal) -> Statement:
    """The statement of a refusal ``runner`` signed with its registered ``key``: an execution
    statement, ok false, nothing run, naming the runner and the refused capsule's lease."""
    if not isinstance(envelope, dict):
        raise InputError("envelope", "must be the runner-signed DSSE envelope of the refusal")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise InputError("envelope.signatures", "must hold exactly one signature, this runner's")
    try:
        open_envelope(envelope, [key])
        said = statement_of(envelope)
    except SignatureError as exc:
        raise InputError(
            "envelope", f"is not signed by this runner's registered key {key.keyid[:16]}… ({exc})"
        ) from None
    except MalformedEvidence as exc:
        raise InputError(f"envelope.{exc.field}", exc.problem) from None
    if said.stage is not Stage.EXECUTION:
        raise InputError(
            "envelope.predicateType",
            f"a refusal is an execution statement, not {said.stage.value}",
        )
    predicate = said.predicate
    if not is_refusal(predicate):
        raise InputError(
            "envelope.predicate.error",
            "a refusal has ok false and an error starting with 'capsule refused:'",
        )
    if predicate.get("argv") != []:
        raise InputError("envelope.predicate.argv", "must be empty: a refused capsule runs nothing")
    ref = predicate.get("runner")
    if not isinstance(ref, dict) or ref.get("id") != runner.id:
        raise InputError(
            "envelope.predicate.runner", f"must name the runner reporting it ({runner.name})"
        )
    lease_id = predicate.get("lease_id")
    if not isinstance(lease_id, str) or not lease_id:
        raise InputError("envelope.predicate.lease_id", "must name the refused capsule's lease")
    token = predicate.get("fencing_token")
    if isinstance(token, bool) or not isinstance(token, int):
        raise InputError("envelope.predicate.fencing_token", "must be an integer")
    return said


def report_sequence(value: Any, stage: Stage) -> int:
    """A report's number within its lease: a positive integer; by default 1 for execution
    and 2 for verification (the order a runner reports in)."""
    if value is None:
        return 1 if stage is Stage.EXECUTION else 2
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("sequence", "must be a positive integer (its number in the lease)")
    return int(value)


def envelope_sha256(envelope: Any) -> str:
    """SHA-256 of the report's envelope (canonical JSON): the same report resent matches."""
    try:
        return digest_of(envelope)
    except Exception:  # not canonical JSON (rfc8785 refuses it): matches no recorded report
        return ""


def lease_wait(value: Any) -> float:
    """The seconds a lease request asks to wait for work: 0 (default) to MAX_LEASE_WAIT."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InputError("wait", "must be a number of seconds, 0 or more")
    return float(min(value, MAX_LEASE_WAIT))


def lease_count(value: Any) -> int:
    """How many capsules one lease request asks for: 1 (default) to MAX_LEASES."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LEASES:
        raise InputError("max", f"must be a whole number of capsules from 1 to {MAX_LEASES}")
    return int(value)


def report_fields(item: Any) -> tuple[str, Any, Any, Stage, Any]:
    """One report of a batch: (lease_id, fencing_token, envelope, stage, sequence)."""
    if not isinstance(item, dict):
        raise InputError("reports[]", "must be an object")
    lease_id = item.get("lease_id")
    if not isinstance(lease_id, str) or not lease_id:
        raise InputError("lease_id", "is required: the lease the report belongs to")
    stage = item.get("stage")
    if stage not in (Stage.EXECUTION.value, Stage.VERIFICATION.value):
        raise InputError("stage", "must be execution or verification")
    return (
        lease_id,
        item.get("fencing_token"),
        item.get("envelope"),
        Stage(stage),
        item.get("sequence"),
    )
