"""Moves proposals through the lifecycle: propose, assess, decide, approve, deny, cancel."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select, update

from placet.domain.authority import OWNER_OF, Decision, Outcome
from placet.domain.errors import Conflict, Forbidden, IllegalTransition, InputError, NotFound
from placet.domain.ids import new_id
from placet.domain.lifecycle import (
    TERMINAL,
    Approve,
    Assess,
    Cancel,
    Decide,
    Deny,
    Escalate,
    Event,
    Expire,
    Expired,
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
from placet.service.clock import parse_rfc3339, rfc3339
from placet.service.codec import decision_to_json, snapshot_from_json, snapshot_to_json
from placet.service.context import Context
from placet.service.graph import GraphService
from placet.service.ledger import LedgerService
from placet.service.policies import PolicyService
from placet.store.tables import principals, proposals

if TYPE_CHECKING:
    from placet.service.notifications import NotificationService

log = logging.getLogger("placet.proposals")

MAX_IDEMPOTENCY_KEY = 200
MAX_LIST = 1000
MAX_REASON = 2000
# The expiry warning goes out this long before the deadline (or at 90% of a shorter window).
EXPIRY_WARNING = timedelta(hours=1)
# Notification event per decision outcome.
DECISION_EVENTS = {
    Outcome.ALLOW: "proposal.authorized",
    Outcome.REQUIRE_APPROVAL: "approval.requested",
    Outcome.DENY: "proposal.denied",
}


# Built once: SQLAlchemy then reuses the compiled form on every call.
_INSERT = proposals.insert()
_UPDATE = (
    update(proposals)
    .where(proposals.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        snapshot=bindparam("b_snapshot"),
        updated_at=bindparam("b_updated_at"),
        deadline=bindparam("b_deadline"),
        escalate_at=bindparam("b_escalate_at"),
    )
    .returning(proposals.c.rollback_of)
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
    rollback_of: dict[str, str] | None = None


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
        "rollback": content.get("rollback"),
        "rollback_of": getattr(row, "rollback_of", None),
        "decision": (
            {
                k: decision.get(k)
                for k in ("outcome", "reasons", "approvals", "obligations", "policy_digest")
            }
            if decision
            else None
        ),
        "decided_at": snap.get("decided_at"),
        "deadline": (
            _deadline(snap)
            if row.state in (State.PENDING_APPROVAL.value, State.AUTHORIZED.value)
            else None
        ),
        "escalated": bool(snap.get("escalated", False)),
        "votes": [
            {
                "by": v["by"]["name"],
                "roles": v["by"].get("roles", []),
                "vote": "approve" if v["approve"] else "deny",
                "digest": v["digest"],
                "reason": v.get("reason", ""),
                "at": v.get("at"),
            }
            for v in snap.get("votes", [])
        ],
        "reason": snap.get("reason", ""),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _deadline(snap: dict[str, Any]) -> str | None:
    decision, decided_at = snap.get("decision"), snap.get("decided_at")
    if not decision or not decided_at or decision["outcome"] != Outcome.REQUIRE_APPROVAL.value:
        return None
    moment = parse_rfc3339(decided_at) + timedelta(seconds=decision["approvals"]["expires_in"])
    return rfc3339(moment)


def _open_deadline(machine: ProposalMachine) -> tuple[str | None, str | None]:
    """The deadline and escalation instants upkeep must act on (None when nothing is due)."""
    snap = machine.snapshot
    deadline = snap.deadline
    waiting = snap.state in (State.PENDING_APPROVAL, State.AUTHORIZED)
    escalate_at = snap.escalate_at if snap.state is State.PENDING_APPROVAL else None
    return (
        rfc3339(deadline) if deadline is not None and waiting else None,
        rfc3339(escalate_at) if escalate_at is not None else None,
    )


class ProposalService:
    """The lifecycle driven against the store, each transition with its statement."""

    def __init__(
        self,
        ctx: Context,
        ledger: LedgerService,
        graph: GraphService,
        policies: PolicyService,
        notifications: NotificationService | None = None,
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.graph = graph
        self.policies = policies
        self.notifications = notifications

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
        if snap.state is State.AUTHORIZED:
            self.ctx.work_added(conn)
        deadline, escalate_at = _open_deadline(machine)
        stored = Stored(
            proposal_id,
            snap.state.value,
            snap.digest,
            snapshot_to_json(snap),
            created_at,
            rfc3339(self.ctx.clock()),
        )
        link = conn.execute(
            _UPDATE,
            {
                "b_id": proposal_id,
                "b_state": stored.state,
                "b_snapshot": stored.snapshot,
                "b_updated_at": stored.updated_at,
                "b_deadline": deadline,
                "b_escalate_at": escalate_at,
            },
        ).scalar()
        return replace(stored, rollback_of=link) if link is not None else stored

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
            stored = self._submit(conn, agent, content, idempotency_key)
        return view(stored), True

    def _submit(
        self,
        conn: Connection,
        agent: Principal,
        content: ProposalContent,
        idempotency_key: str | None = None,
        rollback_of: dict[str, str] | None = None,
    ) -> Stored:
        """Record, assess and decide a checked proposal in the caller's transaction."""
        proposal_id = new_id()
        now = rfc3339(self.ctx.clock())
        machine = ProposalMachine()
        transitions = machine.handle(Propose(agent, content))
        predicate: dict[str, Any] = {"proposal": content.as_dict(), "agent": agent.ref()}
        if rollback_of is not None:
            predicate["rollback_of"] = rollback_of
        self.ledger.record(
            conn, proposal_id, content.digest, Stage.PROPOSAL, predicate, transitions
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
                rollback_of=rollback_of,
            ),
        )
        assessment = self._assess(content)
        self.step(conn, proposal_id, machine, Assess(), assessment)
        self._decide(conn, proposal_id, machine, agent, content, assessment)
        return self.save(conn, proposal_id, machine, now)

    def file_rollback(
        self, conn: Connection, original_id: str, machine: ProposalMachine
    ) -> tuple[str | None, str]:
        """File the original's declared rollback as a new proposal by the same agent, assessed
        and decided by policy like any other, in the caller's transaction.

        Returns (the new proposal's id, a note for the original's closure reason); the id is
        None when nothing was filed (no rollback declared, or it no longer passes the checks).
        """
        snap = machine.snapshot
        assert snap.content is not None and snap.proposer is not None
        body = snap.content.rollback_body()
        if body is None:
            return None, ""
        agent = self._agent_now(conn, snap.proposer)
        try:
            if agent.kind is not PrincipalKind.AGENT:
                raise Forbidden(agent.name, "propose", "only agents propose")
            content = parse_proposal(body, agent.id)
        except (InputError, Forbidden) as exc:
            log.warning("rollback of proposal %s not filed: %s", original_id, exc)
            return None, f"rollback not filed: {exc}"
        link = {"id": original_id, "digest": snap.digest}
        stored = self._submit(conn, agent, content, rollback_of=link)
        return stored.id, f"rollback filed as proposal {stored.id} ({stored.state})"

    def _agent_now(self, conn: Connection, proposer: Principal) -> Principal:
        """The proposing agent as recorded now (roles and teams may have changed since)."""
        row = conn.execute(select(principals).where(principals.c.id == proposer.id)).first()
        if row is None:
            return proposer
        return Principal(
            id=row.id,
            name=row.name,
            kind=PrincipalKind(row.kind),
            owner=row.owner,
            teams=tuple(row.teams or ()),
            roles=tuple(row.roles or ()),
        )

    def _assess(self, content: ProposalContent) -> dict[str, Any]:
        """Targets, blast radius and reachability against the current graph version."""
        return self.graph.assess(content)

    def _resolver(self) -> Callable[[str], Iterable[str]]:
        """Selectors as the domain checks them: ``owner-of:NODE`` becomes the node's owners
        in the current graph version (nothing when the node is unknown or unowned)."""
        graph = self.graph
        loaded: list[Any] = []

        def resolve(selector: str) -> Iterable[str]:
            if not selector.startswith(OWNER_OF):
                return (selector,)
            if not loaded:  # the graph is read only when a decision names owner-of
                loaded.append(graph.current())
            current = loaded[0]
            node = current.graph.nodes.get(selector[len(OWNER_OF) :]) if current else None
            return tuple(node.owners) if node is not None else ()

        return resolve

    def _decide(
        self,
        conn: Connection,
        proposal_id: str,
        machine: ProposalMachine,
        agent: Principal,
        content: ProposalContent,
        assessment: dict[str, Any],
    ) -> None:
        now = self.ctx.clock()
        document: dict[str, Any] | None = None
        decision: Decision | None = None
        heads = self.policies.heads_in(conn)
        bundle_id, bundle = heads.enforcing
        failure = ""
        try:
            document = build_input(
                proposal_id=proposal_id,
                content=content,
                agent=agent,
                assessment=assessment,
                now=now,
            )
            decision = bundle.evaluate(document)
            decision = replace(decision, requirement=decision.requirement.resolve(self._resolver()))
        except PolicyError as exc:
            failure = f"policy error: {exc}"
        shadow = (
            self.policies.record_shadow(conn, proposal_id, document, decision, heads.shadow)
            if document is not None and heads.shadow is not None
            else None
        )
        if decision is not None:
            predicate = {
                **decision_to_json(decision),
                "policy": {
                    "bundle_digest": decision.policy_digest,
                    "bundle_id": bundle_id,
                    "name": bundle.name,
                },
                "proposal_digest": machine.snapshot.digest,
                "decided_at": rfc3339(now),
            }
            if shadow is not None:
                predicate["shadow"] = {
                    k: shadow.get(k) for k in ("bundle_id", "bundle_digest", "outcome", "differs")
                }
            del predicate["policy_digest"]
            try:
                self.step(conn, proposal_id, machine, Decide(decision, now), predicate)
            except IllegalTransition as exc:
                failure = f"policy decision cannot be met: {exc.detail or exc}"
            else:
                self._notify_decision(conn, proposal_id, machine, decision)
                return
        # Fail closed: the proposal ends failed with the reason; nothing executes.
        self.step(
            conn,
            proposal_id,
            machine,
            Fail(failure),
            {"state": State.FAILED.value, "reason": failure},
        )

    # ---- notifications -------------------------------------------------------------

    def _notify(
        self,
        conn: Connection,
        event: str,
        proposal_id: str,
        machine: ProposalMachine,
        extra_channels: Iterable[str] = (),
    ) -> None:
        """Queue ``event`` for the channels subscribed to it (and any named); delivery is
        upkeep's job, so a failing channel never blocks, approves or denies anything."""
        if self.notifications is None:
            return
        named = tuple(extra_channels)
        snap = machine.snapshot
        dedup = f"{event}:{proposal_id}:{len(snap.votes)}:{snap.state}"
        try:
            if not self.notifications.listeners(conn, event, named):
                return  # nobody listens: no payload to build, nothing to queue
            payload = {"proposal": self._payload_view(proposal_id, machine), "event": event}
            with conn.begin_nested():
                self.notifications.enqueue(conn, event, proposal_id, payload, None, dedup)
                if named:
                    self.notifications.enqueue(conn, event, proposal_id, payload, named, dedup)
        except Exception:  # a notification never stands in the way of a decision
            log.exception("could not queue %s for proposal %s", event, proposal_id)

    def _payload_view(self, proposal_id: str, machine: ProposalMachine) -> dict[str, Any]:
        snap = machine.snapshot
        now = rfc3339(self.ctx.clock())
        stored = Stored(
            proposal_id,
            snap.state.value if snap.state else "",
            snap.digest,
            snapshot_to_json(machine.snapshot),
            now,
            now,
        )
        return view(stored)

    def _notify_decision(
        self, conn: Connection, proposal_id: str, machine: ProposalMachine, decision: Decision
    ) -> None:
        event = DECISION_EVENTS[decision.outcome]
        self._notify(conn, event, proposal_id, machine, decision.obligations.notify)

    def approve(
        self, human: Principal, proposal_id: str, digest: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """A human's yes, bound to the proposal digest (the current one unless given)."""
        return self._vote(human, proposal_id, digest, approve=True, reason=reason)

    def deny(
        self, human: Principal, proposal_id: str, reason: str, digest: str | None = None
    ) -> dict[str, Any]:
        """A human's no, with a reason; enough denials (one by default) end it denied."""
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
        if len(reason) > MAX_REASON:
            raise InputError("reason", f"at most {MAX_REASON} characters")
        lapsed: Expired | None = None
        with self.ctx.write() as conn:
            row, machine = self.load(conn, proposal_id)
            bound = digest or row.digest
            now = self.ctx.clock()
            event: Event = (
                Approve(human, bound, now, reason) if approve else Deny(human, bound, reason, now)
            )
            predicate = {
                "vote": attempt,
                "approver": {
                    **human.ref(),
                    "roles": list(human.roles),
                    "groups": list(human.teams),
                },
                "proposal_digest": bound,
                "reason": reason,
                "at": rfc3339(now),
            }
            try:
                self.step(conn, proposal_id, machine, event, predicate)
            except Expired as exc:
                # Record the expiry now (the vote itself is refused), then report it.
                self._expire(conn, proposal_id, machine, "its approval window closed")
                lapsed = exc
            if lapsed is None:
                state = machine.snapshot.state
                if state is State.AUTHORIZED:
                    self._notify(conn, "proposal.authorized", proposal_id, machine)
                elif state is State.DENIED:
                    self._notify(conn, "proposal.denied", proposal_id, machine)
            stored = self.save(conn, proposal_id, machine, row.created_at)
        if lapsed is not None:
            raise lapsed
        return view(stored)

    def _expire(
        self, conn: Connection, proposal_id: str, machine: ProposalMachine, reason: str
    ) -> None:
        transitions = machine.handle(Expire(reason))
        self.close(conn, proposal_id, machine, transitions)
        self._notify(conn, "proposal.expired", proposal_id, machine)

    # ---- upkeep: expiry, escalation, warnings ----------------------------------------

    def upkeep(self, now: datetime | None = None) -> dict[str, int]:
        """Expire lapsed proposals, escalate overdue ones, warn of coming expiries."""
        now = now or self.ctx.clock()
        stamp = rfc3339(now)
        counts = {"expired": 0, "escalated": 0, "warned": 0}
        with self.ctx.read() as conn:
            due = conn.execute(
                select(proposals.c.id).where(
                    proposals.c.deadline.is_not(None), proposals.c.deadline <= stamp
                )
            ).all()
            escalating = conn.execute(
                select(proposals.c.id).where(
                    proposals.c.escalate_at.is_not(None), proposals.c.escalate_at <= stamp
                )
            ).all()
            soon = conn.execute(
                select(proposals.c.id).where(
                    proposals.c.state == State.PENDING_APPROVAL.value,
                    proposals.c.deadline.is_not(None),
                    proposals.c.deadline <= rfc3339(now + EXPIRY_WARNING),
                )
            ).all()
        for item in due:
            with self.ctx.write() as conn:
                row, machine = self.load(conn, item.id)
                if not machine.snapshot.expired(now):
                    continue
                self._expire(conn, item.id, machine, "its approval window closed")
                self.save(conn, item.id, machine, row.created_at)
                counts["expired"] += 1
        for item in escalating:
            with self.ctx.write() as conn:
                row, machine = self.load(conn, item.id)
                when = machine.snapshot.escalate_at
                if machine.state is not State.PENDING_APPROVAL or when is None or when > now:
                    continue
                decision = machine.snapshot.decision
                assert decision is not None and decision.requirement.escalation is not None
                escalation = decision.requirement.escalation
                self.step(
                    conn,
                    item.id,
                    machine,
                    Escalate(now),
                    {
                        "escalated": True,
                        "proposal_digest": machine.snapshot.digest,
                        "to": list(escalation.to),
                        "eligible": list(escalation.eligible),
                        "at": stamp,
                    },
                )
                self._notify(conn, "approval.escalated", item.id, machine)
                self.save(conn, item.id, machine, row.created_at)
                counts["escalated"] += 1
        for item in soon:
            with self.ctx.write() as conn:
                row, machine = self.load(conn, item.id)
                deadline = machine.snapshot.deadline
                decision = machine.snapshot.decision
                if machine.state is not State.PENDING_APPROVAL or not deadline or not decision:
                    continue
                window = timedelta(seconds=decision.requirement.expires_in)
                if now < deadline - min(EXPIRY_WARNING, window / 10):
                    continue
                if self.notifications is not None:
                    self._notify_once(conn, "approval.expiring", item.id, machine)
                    counts["warned"] += 1
        return counts

    def _notify_once(
        self, conn: Connection, event: str, proposal_id: str, machine: ProposalMachine
    ) -> None:
        """Queue ``event`` once per proposal (upkeep runs every second)."""
        assert self.notifications is not None
        payload = {"proposal": self._payload_view(proposal_id, machine), "event": event}
        try:
            with conn.begin_nested():
                self.notifications.enqueue(
                    conn, event, proposal_id, payload, None, f"{event}:{proposal_id}"
                )
        except Exception:
            log.exception("could not queue %s for proposal %s", event, proposal_id)

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
