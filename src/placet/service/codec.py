"""Lifecycle snapshots to and from JSON for the ``proposals.snapshot`` column."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from placet.domain.authority import (
    ChangeWindow,
    Decision,
    Escalation,
    Obligations,
    Outcome,
    Requirement,
)
from placet.domain.lifecycle import LeaseGrant, Snapshot, State, Vote
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from placet.service.clock import parse_rfc3339, rfc3339


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


def _window_to_json(w: ChangeWindow | None) -> dict[str, Any] | None:
    return w.as_dict() if w is not None else None


def _window_from_json(d: dict[str, Any] | None) -> ChangeWindow | None:
    if d is None:
        return None
    return ChangeWindow(
        days=tuple(d["days"]),
        start=time.fromisoformat(d["start"]),
        end=time.fromisoformat(d["end"]),
        timezone=d["timezone"],
    )


def requirement_to_json(r: Requirement) -> dict[str, Any]:
    escalation = r.escalation
    return {
        "min_approvals": r.count,
        "from": list(r.from_),
        "eligible": list(r.eligible),
        "distinct_from": list(r.distinct_from),
        "owner_may_approve": r.owner_may_approve,
        "expires_in": r.expires_in,
        "escalate_to": (
            {
                "after": escalation.after,
                "from": list(escalation.to),
                "eligible": list(escalation.eligible),
            }
            if escalation is not None
            else None
        ),
        "denials": r.denials,
    }


def requirement_from_json(d: dict[str, Any]) -> Requirement:
    escalation = d.get("escalate_to")
    return Requirement(
        count=d["min_approvals"],
        from_=tuple(d["from"]),
        eligible=tuple(d["eligible"]),
        distinct_from=tuple(d["distinct_from"]),
        owner_may_approve=d["owner_may_approve"],
        expires_in=d["expires_in"],
        escalation=(
            Escalation(
                escalation["after"], tuple(escalation["from"]), tuple(escalation["eligible"])
            )
            if escalation
            else None
        ),
        denials=d["denials"],
    )


def obligations_to_json(o: Obligations) -> dict[str, Any]:
    return {
        "validation": list(o.validation),
        "change_window": _window_to_json(o.change_window),
        "notify": list(o.notify),
    }


def obligations_from_json(d: dict[str, Any] | None) -> Obligations:
    if not d:
        return Obligations()
    return Obligations(
        validation=tuple(d.get("validation", ())),
        change_window=_window_from_json(d.get("change_window")),
        notify=tuple(d.get("notify", ())),
    )


def decision_to_json(d: Decision) -> dict[str, Any]:
    """A decision as recorded in statements and snapshots."""
    return {
        "outcome": d.outcome.value,
        "reasons": list(d.reasons),
        "approvals": requirement_to_json(d.requirement),
        "obligations": obligations_to_json(d.obligations),
        "policy_digest": d.policy_digest,
        "retries": d.retries,
    }


def decision_from_json(d: dict[str, Any]) -> Decision:
    return Decision(
        outcome=Outcome(d["outcome"]),
        reasons=tuple(d["reasons"]),
        requirement=requirement_from_json(d["approvals"]),
        policy_digest=d["policy_digest"],
        obligations=obligations_from_json(d.get("obligations")),
        retries=d.get("retries", 0),  # absent in snapshots written before retries
    )


def _instant(text: str | None) -> datetime | None:
    return parse_rfc3339(text) if text else None


def snapshot_to_json(s: Snapshot) -> dict[str, Any]:
    assert s.state is not None and s.proposer is not None and s.content is not None
    return {
        "state": s.state.value,
        "proposer": principal_to_json(s.proposer),
        "content": s.content.as_dict(),
        "digest": s.digest,
        "decision": decision_to_json(s.decision) if s.decision else None,
        "decided_at": rfc3339(s.decided_at) if s.decided_at else None,
        "escalated": s.escalated,
        "votes": [
            {
                "by": principal_to_json(v.by),
                "approve": v.approve,
                "digest": v.digest,
                "reason": v.reason,
                "at": rfc3339(v.at) if v.at else None,
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
    """Stored content back as a ProposalContent; a declared rollback takes the original's
    agent and environment (see ProposalContent.rollback_dict)."""
    rollback = c.get("rollback")
    return ProposalContent(
        agent=c["agent"],
        kind=c["kind"],
        targets=tuple(c["targets"]),
        parameters=c["parameters"],
        environment=c["environment"],
        intent=c["intent"],
        verify=c.get("verify"),
        scope=tuple(c.get("scope", ())),
        rollback=(
            content_from_json({**rollback, "agent": c["agent"], "environment": c["environment"]})
            if rollback is not None
            else None
        ),
    )


def snapshot_from_json(d: dict[str, Any]) -> Snapshot:
    lease = d.get("lease")
    return Snapshot(
        state=State(d["state"]),
        proposer=principal_from_json(d["proposer"]),
        content=content_from_json(d["content"]),
        digest=d["digest"],
        decision=decision_from_json(d["decision"]) if d.get("decision") else None,
        decided_at=_instant(d.get("decided_at")),
        escalated=bool(d.get("escalated", False)),
        votes=tuple(
            Vote(
                principal_from_json(v["by"]),
                v["approve"],
                v["digest"],
                v.get("reason", ""),
                _instant(v.get("at")),
            )
            for v in d.get("votes", ())
        ),
        lease=LeaseGrant(lease["runner_id"], lease["fencing_token"]) if lease else None,
        leases_granted=d.get("leases_granted", 0),
        reason=d.get("reason", ""),
    )
