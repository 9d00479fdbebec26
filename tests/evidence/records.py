"""Real evidence for tests: real keys, real signed statements, a real Merkle log, real checkpoints.

A :class:`Ledger` plays the control plane and one runner. ``run_allowed``,
``run_approved`` and ``run_denied`` record whole proposal lifecycles the way the
service does (statements.md), interleaved with another proposal's statements so that
leaf indexes are not contiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from placet.domain.canonical import canonical_json, sha256_hex
from placet.domain.lifecycle import Stage
from placet.domain.proposal import ProposalContent
from placet.domain.signing import SigningKey, envelope_bytes
from placet.evidence.bundle import CONTROL_PLANE, RUNNER, BundleKey, build_bundle, entry
from placet.evidence.checkpoint import sign_checkpoint
from placet.evidence.log import MemoryLeafStore, MerkleLog
from placet.evidence.statements import statement

ORIGIN = "placet.test/ledger"
AT = "2026-11-25T22:40:01.123Z"
AGENT = {"id": "agt-01", "name": "deploy-bot", "kind": "agent", "owner": "carol"}
ALICE = {"id": "hum-alice", "name": "alice", "kind": "human"}
BOB = {"id": "hum-bob", "name": "bob", "kind": "human"}
RUNNER_REF = {"id": "run-01", "name": "runner-a", "kind": "runner"}


def content(intent: str = "restart the api to pick up the new config") -> ProposalContent:
    """A shell proposal by AGENT."""
    return ProposalContent(
        agent=AGENT["id"],
        kind="shell",
        targets=("service:api",),
        parameters={"argv": ["systemctl", "restart", "api"], "timeout": 30},
        environment="production",
        intent=intent,
        verify={"argv": ["curl", "-f", "http://api/healthz"]},
    )


def moves(*pairs: tuple[str | None, str]) -> list[dict[str, str | None]]:
    return [{"from": a, "to": b} for a, b in pairs]


@dataclass
class Ledger:
    """The control plane's log and keys, with one registered runner."""

    control: SigningKey = field(default_factory=SigningKey.generate)
    runner: SigningKey = field(default_factory=SigningKey.generate)
    store: MemoryLeafStore = field(default_factory=MemoryLeafStore)
    log: MerkleLog = field(init=False)
    records: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    # (proposal id, n) -> change applied to that proposal's n-th envelope before it is logged,
    # as a log writer that does not hold the signing key could
    alter: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.log = MerkleLog(self.store, cache_threshold=2)

    def append_envelope(self, proposal_id: str, envelope: dict[str, Any]) -> int:
        change = self.alter.get((proposal_id, len(self.records.get(proposal_id, []))))
        if change is not None:
            envelope = change(envelope)
        index, _ = self.log.append(envelope_bytes(envelope))
        self.records.setdefault(proposal_id, []).append((index, envelope))
        return index

    def record(
        self,
        proposal_id: str,
        digest: str,
        stage: Stage,
        predicate: Mapping[str, Any],
        key: SigningKey | None = None,
    ) -> dict[str, Any]:
        """Sign a statement (control-plane key unless ``key``) and append it to the log."""
        envelope = (key or self.control).sign_statement(
            statement(proposal_id, digest, stage, predicate)
        )
        self.append_envelope(proposal_id, envelope)
        return envelope

    def noise(self) -> None:
        """A statement of some other proposal, so that a bundle's leaves are not contiguous."""
        other = content("an unrelated proposal")
        self.record(
            "P-OTHER",
            other.digest,
            Stage.PROPOSAL,
            {"proposal": other.as_dict(), "agent": AGENT, "transitions": [], "at": AT},
        )

    def checkpoint(self, size: int | None = None) -> str:
        size = self.log.size() if size is None else size
        return sign_checkpoint(ORIGIN, size, self.log.root(size), self.control)

    def keys(self) -> list[BundleKey]:
        return [
            BundleKey(self.control.public, CONTROL_PLANE),
            BundleKey(self.runner.public, RUNNER),
        ]

    def bundle(self, proposal_id: str, size: int | None = None) -> dict[str, Any]:
        """The evidence bundle of one proposal against a checkpoint of the log (default: now)."""
        size = self.log.size() if size is None else size
        entries = [
            entry(index, envelope, self.log.inclusion_proof(index, size))
            for index, envelope in self.records[proposal_id]
            if index < size
        ]
        return build_bundle(proposal_id, self.checkpoint(size), self.keys(), entries)


class Run:
    """Records one proposal's lifecycle statement by statement."""

    def __init__(self, ledger: Ledger, proposal_id: str, proposal: ProposalContent) -> None:
        self.ledger = ledger
        self.id = proposal_id
        self.proposal = proposal
        self.digest = proposal.digest
        self.capsule: dict[str, Any] = {}

    def say(
        self, stage: Stage, predicate: Mapping[str, Any], key: SigningKey | None = None
    ) -> None:
        self.ledger.record(self.id, self.digest, stage, predicate, key)
        self.ledger.noise()

    def propose(self) -> None:
        self.say(
            Stage.PROPOSAL,
            {
                "proposal": self.proposal.as_dict(),
                "agent": AGENT,
                "transitions": moves((None, "proposed")),
                "at": AT,
            },
        )

    def assess(self) -> None:
        self.say(
            Stage.ASSESSMENT,
            {
                "graph_version": "g1",
                "targets": ["service:api"],
                "blast_radius": {"nodes": 3},
                "transitions": moves(("proposed", "assessed")),
                "at": AT,
            },
        )

    def decide(self, outcome: str, count: int = 0, any_of: list[str] | None = None) -> None:
        target = {"allow": "authorized", "deny": "denied"}.get(outcome, "pending_approval")
        self.say(
            Stage.DECISION,
            {
                "outcome": outcome,
                "reasons": [f"policy says {outcome}"],
                "approvals": {"count": count, "any_of": any_of or []},
                "policy": {"bundle_digest": "b" * 64, "name": "default"},
                "proposal_digest": self.digest,
                "transitions": moves(("assessed", "decided"), ("decided", target)),
                "at": AT,
            },
        )

    def vote(self, approver: Mapping[str, Any], vote: str = "approve", reason: str = "") -> None:
        self.say(
            Stage.APPROVAL,
            {
                "vote": vote,
                "approver": dict(approver),
                "proposal_digest": self.digest,
                "reason": reason,
                "transitions": [],
                "at": AT,
            },
        )

    def lease(self, runner_key: SigningKey | None = None) -> None:
        runner_key = runner_key or self.ledger.runner
        capsule = self.ledger.control.sign_envelope(
            canonical_json(
                {
                    "capsule_version": 1,
                    "proposal_id": self.id,
                    "proposal_digest": self.digest,
                    "proposal": self.proposal.as_dict(),
                    "runner_id": RUNNER_REF["id"],
                    "lease_id": "lease-1",
                    "fencing_token": 7,
                    "issued_at": AT,
                    "expires_at": AT,
                }
            ),
            "application/vnd.placet.capsule+json",
        )
        self.capsule = {
            "runner": RUNNER_REF,
            "runner_keyid": runner_key.keyid,
            "lease_id": "lease-1",
            "fencing_token": 7,
            "capsule_digest": sha256_hex(envelope_bytes(capsule)),
            "proposal_digest": self.digest,
            "expires_at": AT,
            "transitions": moves(("authorized", "executing")),
            "at": AT,
        }
        self.say(Stage.CAPSULE, self.capsule)

    def lease_terms(self) -> dict[str, Any]:
        """The lease id and fencing token the runner reports: the capsule's, once leased."""
        return {
            "lease_id": self.capsule.get("lease_id", "lease-1"),
            "fencing_token": self.capsule.get("fencing_token", 7),
        }

    def execute(self, ok: bool = True, key: SigningKey | None = None) -> None:
        self.say(
            Stage.EXECUTION,
            {
                "runner": RUNNER_REF,
                **self.lease_terms(),
                "capsule_digest": self.capsule.get("capsule_digest", "0" * 64),
                "proposal_digest": self.digest,
                "kind": "shell",
                "argv": ["systemctl", "restart", "api"],
                "exit_code": 0 if ok else 1,
                "timed_out": False,
                "ok": ok,
                "error": None,
                "stdout_sha256": sha256_hex(b""),
                "stderr_sha256": sha256_hex(b""),
                "stdout_bytes": 0,
                "stderr_bytes": 0,
                "started_at": AT,
                "finished_at": AT,
            },
            key or self.ledger.runner,
        )

    def verify(self, passed: bool = True, key: SigningKey | None = None) -> None:
        self.say(
            Stage.VERIFICATION,
            {
                "runner": RUNNER_REF,
                **self.lease_terms(),
                "proposal_digest": self.digest,
                "argv": ["curl", "-f", "http://api/healthz"],
                "exit_code": 0 if passed else 22,
                "timed_out": False,
                "skipped": False,
                "passed": passed,
                "error": None,
                "started_at": AT,
                "finished_at": AT,
            },
            key or self.ledger.runner,
        )

    def close(self, state: str, reason: str = "") -> None:
        self.say(
            Stage.CLOSURE,
            {"state": state, "reason": reason, "transitions": moves((None, state)), "at": AT},
        )


def run_allowed(ledger: Ledger, proposal_id: str = "P-ALLOWED") -> str:
    run = Run(ledger, proposal_id, content())
    run.propose()
    run.assess()
    run.decide("allow")
    run.lease()
    run.execute()
    run.verify()
    run.close("succeeded")
    return proposal_id


def run_approved(ledger: Ledger, proposal_id: str = "P-APPROVED") -> str:
    run = Run(ledger, proposal_id, content("rotate the api's database credentials"))
    run.propose()
    run.assess()
    run.decide("require_approval", 2, ["alice", "bob"])
    run.vote(ALICE)
    run.vote(BOB)
    run.lease()
    run.execute()
    run.verify()
    run.close("succeeded")
    return proposal_id


def run_denied(ledger: Ledger, proposal_id: str = "P-DENIED") -> str:
    run = Run(ledger, proposal_id, content("drop the production database"))
    run.propose()
    run.assess()
    run.decide("deny")
    run.close("denied", "policy says deny")
    return proposal_id


RUNS: dict[str, Callable[[Ledger], str]] = {
    "allowed": run_allowed,
    "approved": run_approved,
    "denied": run_denied,
}
