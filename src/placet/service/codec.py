"""Lifecycle snapshots to and from JSON for the ``proposals.snapshot`` column."""

from __future__ import annotations

from typing import Any

from placet.domain.lifecycle import (
    Decision,
    LeaseGrant,
    Outcome,
    Requirement,
    Snapshot,
    State,
    Vote,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent


def principal_to_json(p: Principal) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind.value,
        "owner": p.owner,
        "teams": list(p.teams),
        "roles": list(p.roles),
    }


def principal_from_json(d: dict[str, Any]) -> Principal:
    return Principal(
        id=d["id"],
        name=d["name"],
        kind=PrincipalKind(d["kind"]),
        owner=d.get("owner"),
        teams=tuple(d.get("teams", ())),
        roles=tuple(d.get("roles", ())),
    )


def decision_to_json(d: Decision) -> dict[str, Any]:
    return {
        "outcome": d.outcome.value,
        "reasons": list(d.reasons),
        "approvals": {"count": d.requirement.count, "any_of": list(d.requirement.any_of)},
        "policy_digest": d.policy_digest,
    }


def decision_from_json(d: dict[str, Any]) -> Decision:
    return Decision(
        outcome=Outcome(d["outcome"]),
        reasons=tuple(d["reasons"]),
        requirement=Requirement(d["approvals"]["count"], tuple(d["approvals"]["any_of"])),
        policy_digest=d["policy_digest"],
    )


def snapshot_to_json(s: Snapshot) -> dict[str, Any]:
    assert s.state is not None and s.proposer is not None and s.content is not None
    return {
        "state": s.state.value,
        "proposer": principal_to_json(s.proposer),
        "content": s.content.as_dict(),
        "digest": s.digest,
        "decision": decision_to_json(s.decision) if s.decision else None,
        "votes": [
            {
                "by": principal_to_json(v.by),
                "approve": v.approve,
                "digest": v.digest,
                "reason": v.reason,
            }
            for v in s.votes
        ],
        "lease": (
            {"runner_id": s.lease.runner_id, "fencing_token": s.lease.fencing_token}
            if s.lease
            else None
        ),
        "leases_granted": s.leases_granted,
        "reason": s.reason,
    }


def content_from_json(c: dict[str, Any]) -> ProposalContent:
    return ProposalContent(
        agent=c["agent"],
        kind=c["kind"],
        targets=tuple(c["targets"]),
        parameters=c["parameters"],
        environment=c["environment"],
        intent=c["intent"],
        verify=c.get("verify"),
        scope=tuple(c.get("scope", ())),
    )


def snapshot_from_json(d: dict[str, Any]) -> Snapshot:
    lease = d.get("lease")
    return Snapshot(
        state=State(d["state"]),
        proposer=principal_from_json(d["proposer"]),
        content=content_from_json(d["content"]),
        digest=d["digest"],
        decision=decision_from_json(d["decision"]) if d.get("decision") else None,
        votes=tuple(
            Vote(principal_from_json(v["by"]), v["approve"], v["digest"], v.get("reason", ""))
            for v in d.get("votes", ())
        ),
        lease=LeaseGrant(lease["runner_id"], lease["fencing_token"]) if lease else None,
        leases_granted=d.get("leases_granted", 0),
        reason=d.get("reason", ""),
    )
