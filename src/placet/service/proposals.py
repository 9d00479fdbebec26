"""Moves proposals through the lifecycle: propose, assess, decide, approve, deny, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from placet.domain.errors import Conflict, Forbidden, InputError, NotFound
from placet.domain.ids import new_id
from placet.domain.lifecycle import (
    TERMINAL,
    Approve,
    Assess,
    Cancel,
    Decide,
    Deny,
    Event,
    Fail,
    ProposalMachine,
    Propose,
    Stage,
    State,
    Transition,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent, parse_proposal
from placet.policy.errors import PolicyError
from placet.policy.input import build_input
from placet.service.clock import rfc3339
from placet.service.codec import decision_to_json, snapshot_from_json, snapshot_to_json
from placet.service.context import Context
from placet.service.graph import GraphService
from placet.service.ledger import LedgerService
from placet.store.tables import principals, proposals

MAX_IDEMPOTENCY_KEY = 200
MAX_LIST = 1000


# Built once: SQLAlchemy then reuses the compiled form on every call.
_INSERT = proposals.insert()
_UPDATE = (
    update(proposals)
    .where(proposals.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        snapshot=bindparam("b_snapshot"),
        updated_at=bindparam("b_updated_at"),
    )
)
_BY_ID = select(proposals).where(proposals.c.id == bindparam("b_id"))


@dataclass(frozen=True, slots=True)
class Stored:
    """The columns a view needs, as just written (saves re-reading the row)."""

    id: str
    state: str
    digest: str
    snapshot: dict[str, Any]
    created_at: str
    updated_at: str


def view(row: Any) -> dict[str, Any]:
    """A proposal as the API and CLI show it (from a stored row or a :class:`Stored`)."""
    snap = row.snapshot
    content = snap["content"]
    decision = snap.get("decision")
    return {
        "id": row.id,
        "state": row.state,
        "digest": row.digest,
        "agent": {"id": snap["proposer"]["id"], "name": snap["proposer"]["name"]},
        "kind": content["kind"],
        "targets": content["targets"],
        "parameters": content["parameters"],
        "environment": content["environment"],
        "intent": content["intent"],
        "verify": content.get("verify"),
        "scope": content.get("scope", []),
        "decision": (
            {k: decision[k] for k in ("outcome", "reasons", "approvals", "policy_digest")}
            if decision
            else None
        ),
        "votes": [
            {
                "by": v["by"]["name"],
                "vote": "approve" if v["approve"] else "deny",
                "reason": v.get("reason", ""),
            }
            for v in snap.get("votes", [])
        ],
        "reason": snap.get("reason", ""),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class ProposalService:
    """The lifecycle driven against the store, each transition with its statement."""

    def __init__(self, ctx: Context, ledger: LedgerService, graph: GraphService) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.graph = graph

    # ---- helpers -------------------------------------------------------------------

    def load(self, conn: Connection, proposal_id: str) -> tuple[Any, ProposalMachine]:
        """The stored row and a machine holding its snapshot (NotFound if unknown)."""
        row = conn.execute(_BY_ID, {"b_id": proposal_id}).first()
        if row is None:
            raise NotFound("proposal", proposal_id)
        return row, ProposalMachine(snapshot_from_json(row.snapshot))

    def save(
        self, conn: Connection, proposal_id: str, machine: ProposalMachine, created_at: str
    ) -> Stored:
        """Store the machine's state and snapshot (in the caller's transaction)."""
        snap = machine.snapshot
        assert snap.state is not None
        stored = Stored(
            proposal_id,
            snap.state.value,
            snap.digest,
            snapshot_to_json(snap),
            created_at,
            rfc3339(self.ctx.clock()),
        )
        conn.execute(
            _UPDATE,
            {
                "b_id": proposal_id,
                "b_state": stored.state,
                "b_snapshot": stored.snapshot,
                "b_updated_at": stored.updated_at,
            },
        )
        return stored

    def step(
        self,
        conn: Connection,
        proposal_id: str,
        machine: ProposalMachine,
        event: Event,
        predicate: dict[str, Any],
        stage: Stage | None = None,
    ) -> list[Transition]:
        """Apply ``event`` and record its statement (plus a closure when the state is final)."""
        transitions = machine.handle(event)
        snap = machine.snapshot
        self.ledger.record(
            conn, proposal_id, snap.digest, stage or transitions[0].stage, predicate, transitions
        )
        if snap.state in TERMINAL and transitions[0].stage is not Stage.CLOSURE:
            self.close(conn, proposal_id, machine, [])
        return transitions

    def close(
        self,
        conn: Connection,
        proposal_id: str,
        machine: ProposalMachine,
        transitions: list[Transition],
    ) -> None:
        """Record the closure statement that seals a proposal in a final state."""
        snap = machine.snapshot
        assert snap.state is not None
        self.ledger.record(
            conn,
            proposal_id,
            snap.digest,
            Stage.CLOSURE,
            {"state": snap.state.value, "reason": snap.reason},
            transitions,
        )

    @staticmethod
    def _require_human(principal: Principal, attempt: str) -> None:
        if principal.kind is not PrincipalKind.HUMAN:
            raise Forbidden(
                principal.name, attempt, f"{principal.kind.article} never approves or denies"
            )

    def _visible(self, principal: Principal | None, row: Any) -> None:
        if principal is None:  # the local operator, who holds the database itself
            return
        if principal.kind is PrincipalKind.RUNNER:
            raise Forbidden(principal.name, "read proposals", "runners only lease and report")
        if principal.kind is PrincipalKind.AGENT and row.agent_id != principal.id:
            raise NotFound("proposal", row.id)

    # ---- commands ------------------------------------------------------------------

    def propose(
        self, agent: Principal, body: Any, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Submit, assess and decide a proposal; return (view, created)."""
        if agent.kind is not PrincipalKind.AGENT:
            raise Forbidden(agent.name, "propose", "only agents propose")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InputError("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        content = parse_proposal(body, agent.id)
        with self.ctx.write() as conn:
            if idempotency_key is not None:
                existing = conn.execute(
                    select(proposals).where(
                        proposals.c.agent_id == agent.id,
                        proposals.c.idempotency_key == idempotency_key,
                    )
                ).first()
                if existing is not None:
                    if existing.digest != content.digest:
                        raise Conflict(
                            f"Idempotency-Key {idempotency_key!r} was used for proposal "
                            f"{existing.id} with other content"
                        )
                    return view(existing), False
            proposal_id = new_id()
            now = rfc3339(self.ctx.clock())
            machine = ProposalMachine()
            transitions = machine.handle(Propose(agent, content))
            self.ledger.record(
                conn,
                proposal_id,
                content.digest,
                Stage.PROPOSAL,
                {"proposal": content.as_dict(), "agent": agent.ref()},
                transitions,
            )
            conn.execute(
                _INSERT,
                dict(
                    id=proposal_id,
                    agent_id=agent.id,
                    kind=content.kind,
                    environment=content.environment,
                    state=State.PROPOSED.value,
                    digest=content.digest,
                    snapshot=snapshot_to_json(machine.snapshot),
                    idempotency_key=idempotency_key,
                    created_at=now,
                    updated_at=now,
                ),
            )
            assessment = self._assess(content)
            self.step(conn, proposal_id, machine, Assess(), assessment)
            self._decide(conn, proposal_id, machine, agent, content, assessment)
            stored = self.save(conn, proposal_id, machine, now)
        return view(stored), True

    def _assess(self, content: ProposalContent) -> dict[str, Any]:
        """Targets, blast radius and reachability against the current graph version."""
        return self.graph.assess(content)

    def _decide(
        self,
        conn: Connection,
        proposal_id: str,
        machine: ProposalMachine,
        agent: Principal,
        content: ProposalContent,
        assessment: dict[str, Any],
    ) -> None:
        try:
            document = build_input(
                proposal_id=proposal_id,
                content=content,
                agent=agent,
                assessment=assessment,
                now=self.ctx.clock(),
            )
            decision = self.ctx.policy.evaluate(document)
        except PolicyError as exc:
            # Fail closed: the proposal ends failed with the reason; nothing executes.
            self.step(
                conn,
                proposal_id,
                machine,
                Fail(f"policy error: {exc}"),
                {"state": State.FAILED.value, "reason": f"policy error: {exc}"},
            )
            return
        predicate = {
            **decision_to_json(decision),
            "policy": {"bundle_digest": decision.policy_digest, "name": self.ctx.policy.name},
            "proposal_digest": machine.snapshot.digest,
        }
        del predicate["policy_digest"]
        self.step(conn, proposal_id, machine, Decide(decision), predicate)

    def approve(
        self, human: Principal, proposal_id: str, digest: str | None = None
    ) -> dict[str, Any]:
        """A human's yes, bound to the proposal digest (the current one unless given)."""
        return self._vote(human, proposal_id, digest, approve=True, reason="")

    def deny(
        self, human: Principal, proposal_id: str, reason: str, digest: str | None = None
    ) -> dict[str, Any]:
        """A human's no, with a reason; the proposal ends denied."""
        self._require_human(human, "deny")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("reason", "is required to deny a proposal")
        return self._vote(human, proposal_id, digest, approve=False, reason=reason)

    def _vote(
        self,
        human: Principal,
        proposal_id: str,
        digest: str | None,
        *,
        approve: bool,
        reason: str,
    ) -> dict[str, Any]:
        attempt = "approve" if approve else "deny"
        self._require_human(human, attempt)
        with self.ctx.write() as conn:
            row, machine = self.load(conn, proposal_id)
            bound = digest or row.digest
            event: Event = Approve(human, bound) if approve else Deny(human, bound, reason)
            self.step(
                conn,
                proposal_id,
                machine,
                event,
                {
                    "vote": attempt,
                    "approver": human.ref(),
                    "proposal_digest": bound,
                    "reason": reason,
                },
            )
            stored = self.save(conn, proposal_id, machine, row.created_at)
        return view(stored)

    def cancel(self, principal: Principal, proposal_id: str, reason: str = "") -> dict[str, Any]:
        """Withdraw an open proposal before it runs (its agent, or a human)."""
        with self.ctx.write() as conn:
            row, machine = self.load(conn, proposal_id)
            self._visible(principal, row)
            transitions = machine.handle(Cancel(principal, reason))
            self.close(conn, proposal_id, machine, transitions)
            stored = self.save(conn, proposal_id, machine, row.created_at)
        return view(stored)

    # ---- queries -------------------------------------------------------------------

    def get(self, principal: Principal | None, proposal_id: str) -> dict[str, Any]:
        with self.ctx.read() as conn:
            row = conn.execute(select(proposals).where(proposals.c.id == proposal_id)).first()
        if row is None:
            raise NotFound("proposal", proposal_id)
        self._visible(principal, row)
        return view(row)

    def list(
        self,
        principal: Principal | None,
        state: str | None = None,
        agent: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first; agents see only their own. ``principal`` None is the local operator."""
        if principal is not None and principal.kind is PrincipalKind.RUNNER:
            raise Forbidden(principal.name, "list proposals", "runners only lease and report")
        if state is not None and state not in {s.value for s in State}:
            raise InputError("state", f"unknown state {state!r}")
        if not 0 < limit <= MAX_LIST:
            raise InputError("limit", f"must be between 1 and {MAX_LIST}")
        query = select(proposals).order_by(proposals.c.id.desc()).limit(limit)
        if state:
            query = query.where(proposals.c.state == state)
        with self.ctx.read() as conn:
            if agent:
                agent_row = conn.execute(
                    select(principals.c.id).where(
                        (principals.c.name == agent) | (principals.c.id == agent)
                    )
                ).first()
                if agent_row is None:
                    return []
                query = query.where(proposals.c.agent_id == agent_row.id)
            if principal is not None and principal.kind is PrincipalKind.AGENT:
                query = query.where(proposals.c.agent_id == principal.id)
            rows = conn.execute(query).all()
        return [view(r) for r in rows]

    def evidence(self, principal: Principal | None, proposal_id: str) -> dict[str, Any]:
        """The proposal's evidence bundle, for humans and the proposing agent."""
        if principal is not None:
            self.get(principal, proposal_id)
        return self.ledger.export(proposal_id)
