"""The proposal lifecycle as a pure state machine: a transition table and no I/O.

Every accepted event returns the transitions it caused; the caller records each one
with its statement in one database transaction (invariant 4). Events the table does
not allow raise :class:`IllegalTransition`; events from the wrong principal raise
:class:`Forbidden`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from placet.domain import actions
from placet.domain.authority import (
    Decision,
    Escalation,
    Obligations,
    Outcome,
    Requirement,
    Role,
)
from placet.domain.errors import Forbidden, IllegalTransition, InputError
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent

__all__ = [
    "Decision",
    "Escalation",
    "Obligations",
    "Outcome",
    "Requirement",
]


class State(enum.StrEnum):
    """Where a proposal is in its life."""

    PROPOSED = "proposed"
    ASSESSED = "assessed"
    VALIDATING = "validating"
    DECIDED = "decided"
    PENDING_APPROVAL = "pending_approval"
    AUTHORIZED = "authorized"
    EXECUTING = "executing"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.DENIED, State.CANCELLED, State.EXPIRED})
OPEN = frozenset(State) - TERMINAL
RUNNING = frozenset({State.EXECUTING, State.VERIFYING})


class Stage(enum.StrEnum):
    """The evidence stage a transition is recorded under (``https://placet.dev/<stage>/v1``)."""

    PROPOSAL = "proposal"
    ASSESSMENT = "assessment"
    VALIDATION = "validation"
    DECISION = "decision"
    APPROVAL = "approval"
    CAPSULE = "capsule"
    EXECUTION = "execution"
    VERIFICATION = "verification"
    REQUEUE = "requeue"
    CLOSURE = "closure"


# The table: event name -> (states it is accepted in, stage it is recorded under).
# Targets depend on the event's data and are computed in ProposalMachine.handle.
TABLE: dict[str, tuple[frozenset[State | None], Stage]] = {
    "propose": (frozenset({None}), Stage.PROPOSAL),
    "assess": (frozenset({State.PROPOSED}), Stage.ASSESSMENT),
    "validate": (frozenset({State.ASSESSED}), Stage.VALIDATION),
    "decide": (frozenset({State.ASSESSED, State.VALIDATING}), Stage.DECISION),
    "approve": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "deny": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "escalate": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "cancel": (OPEN - RUNNING, Stage.CLOSURE),
    "lease": (frozenset({State.AUTHORIZED}), Stage.CAPSULE),
    "report_execution": (frozenset({State.EXECUTING}), Stage.EXECUTION),
    "report_verification": (frozenset({State.VERIFYING}), Stage.VERIFICATION),
    "requeue": (RUNNING, Stage.REQUEUE),
    "expire": (OPEN - RUNNING, Stage.CLOSURE),
    "fail": (OPEN, Stage.CLOSURE),
}


def _when(at: datetime | None) -> str:
    """An instant for messages: RFC 3339, UTC, to the second."""
    if at is None:
        return "(never)"
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_idempotent(kind: str) -> bool:
    """Whether action kind ``kind`` is declared idempotent (an unknown kind is not)."""
    try:
        return actions.get(kind).idempotent
    except InputError:
        return False


class Expired(IllegalTransition):
    """The proposal's approval window has closed; the caller records the expiry."""


@dataclass(frozen=True, slots=True)
class Vote:
    """A named human's yes or no, bound to one proposal digest, with when and why."""

    by: Principal
    approve: bool
    digest: str
    reason: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """The one lease that may run this proposal: the runner and its fencing token."""

    runner_id: str
    fencing_token: int


# ---- events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Propose:
    by: Principal
    content: ProposalContent
    name = "propose"


@dataclass(frozen=True, slots=True)
class Assess:
    name = "assess"


@dataclass(frozen=True, slots=True)
class Validate:
    name = "validate"


@dataclass(frozen=True, slots=True)
class Decide:
    decision: Decision
    at: datetime
    name = "decide"


@dataclass(frozen=True, slots=True)
class Approve:
    by: Principal
    digest: str
    at: datetime
    reason: str = ""
    name = "approve"


@dataclass(frozen=True, slots=True)
class Deny:
    by: Principal
    digest: str
    reason: str
    at: datetime
    name = "deny"


@dataclass(frozen=True, slots=True)
class Escalate:
    at: datetime
    name = "escalate"


@dataclass(frozen=True, slots=True)
class Cancel:
    by: Principal
    reason: str = ""
    name = "cancel"


@dataclass(frozen=True, slots=True)
class Lease:
    runner: Principal
    fencing_token: int
    at: datetime
    name = "lease"


@dataclass(frozen=True, slots=True)
class ReportExecution:
    runner: Principal
    fencing_token: int
    ok: bool
    name = "report_execution"


@dataclass(frozen=True, slots=True)
class ReportVerification:
    runner: Principal
    fencing_token: int
    ok: bool
    name = "report_verification"


@dataclass(frozen=True, slots=True)
class Requeue:
    """The runner was lost; an idempotent action with retries left goes back to authorized."""

    reason: str
    name = "requeue"


@dataclass(frozen=True, slots=True)
class Expire:
    reason: str
    name = "expire"


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str
    name = "fail"


Event = (
    Propose
    | Assess
    | Validate
    | Decide
    | Approve
    | Deny
    | Escalate
    | Cancel
    | Lease
    | ReportExecution
    | ReportVerification
    | Requeue
    | Expire
    | Fail
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One move of the state machine, to be recorded with its statement."""

    event: str
    source: State | None
    target: State
    stage: Stage


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the machine knows about one proposal; stored and reloaded by the service."""

    state: State | None = None
    proposer: Principal | None = None
    content: ProposalContent | None = None
    digest: str = ""
    decision: Decision | None = None
    decided_at: datetime | None = None
    escalated: bool = False
    votes: tuple[Vote, ...] = ()
    lease: LeaseGrant | None = None
    leases_granted: int = 0
    reason: str = ""

    @property
    def approvals(self) -> tuple[Vote, ...]:
        """The yes votes."""
        return tuple(v for v in self.votes if v.approve)

    @property
    def denials(self) -> tuple[Vote, ...]:
        """The no votes."""
        return tuple(v for v in self.votes if not v.approve)

    @property
    def deadline(self) -> datetime | None:
        """When an approval requirement lapses: decided_at + expires_in (None otherwise)."""
        decision = self.decision
        if (
            decision is None
            or self.decided_at is None
            or decision.outcome is not Outcome.REQUIRE_APPROVAL
        ):
            return None
        return self.decided_at + timedelta(seconds=decision.requirement.expires_in)

    @property
    def escalate_at(self) -> datetime | None:
        """When the requirement escalates, if it can and has not yet."""
        decision = self.decision
        if decision is None or self.decided_at is None or self.escalated:
            return None
        escalation = decision.requirement.escalation
        if decision.outcome is not Outcome.REQUIRE_APPROVAL or escalation is None:
            return None
        return self.decided_at + timedelta(seconds=escalation.after)

    def expired(self, at: datetime) -> bool:
        """Whether the approval window has closed at ``at`` for a proposal still waiting
        to run (pending approval, or authorized by approvals but not yet leased)."""
        deadline = self.deadline
        return (
            deadline is not None
            and at >= deadline
            and self.state in (State.PENDING_APPROVAL, State.AUTHORIZED)
        )


class ProposalMachine:
    """Applies events to a :class:`Snapshot`; ``handle`` is the only way state changes."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self.snapshot = snapshot or Snapshot()

    @property
    def state(self) -> State | None:
        return self.snapshot.state

    def handle(self, event: Event) -> list[Transition]:
        """Apply ``event``; return the transitions it caused (one or two), or raise."""
        allowed, stage = TABLE[event.name]
        if self.snapshot.state not in allowed:
            raise IllegalTransition(
                self.snapshot.state.value if self.snapshot.state else None, event.name
            )
        method = getattr(self, "_on_" + event.name)
        before = self.snapshot.state
        hops: list[State] = method(event)
        transitions = []
        source = before
        for target in hops:
            transitions.append(Transition(event.name, source, target, stage))
            source = target
        self.snapshot = replace(self.snapshot, state=hops[-1])
        return transitions

    # ---- handlers: check, update the snapshot (but not the state), return the hops ----

    def _on_propose(self, event: Propose) -> list[State]:
        if event.by.kind is not PrincipalKind.AGENT:
            raise Forbidden(event.by.name, "propose", "only agents propose")
        if event.content.agent != event.by.id:
            raise Forbidden(event.by.name, "propose", "a proposal names the agent that makes it")
        self.snapshot = replace(
            self.snapshot, proposer=event.by, content=event.content, digest=event.content.digest
        )
        return [State.PROPOSED]

    def _on_assess(self, event: Assess) -> list[State]:
        return [State.ASSESSED]

    def _on_validate(self, event: Validate) -> list[State]:
        return [State.VALIDATING]

    def _on_decide(self, event: Decide) -> list[State]:
        decision = event.decision
        requirement = decision.requirement
        if decision.outcome is Outcome.REQUIRE_APPROVAL:
            if requirement.count < 1:
                raise IllegalTransition(
                    self._name(), "decide", "require_approval needs at least one approval"
                )
            if requirement.from_ and not requirement.eligible:
                raise IllegalTransition(
                    self._name(),
                    "decide",
                    f"no one is eligible to approve: {', '.join(requirement.from_)} names nobody",
                )
            if requirement.expires_in < 1 or requirement.denials < 1:
                raise IllegalTransition(
                    self._name(), "decide", "expiry and denial quorum must be positive"
                )
        self.snapshot = replace(self.snapshot, decision=decision, decided_at=event.at)
        target = {
            Outcome.ALLOW: State.AUTHORIZED,
            Outcome.REQUIRE_APPROVAL: State.PENDING_APPROVAL,
            Outcome.DENY: State.DENIED,
        }[decision.outcome]
        if target is State.DENIED:
            self.snapshot = replace(self.snapshot, reason="; ".join(decision.reasons))
        return [State.DECIDED, target]

    def _check_voter(self, by: Principal, attempt: str, digest: str, at: datetime) -> None:
        proposer = self.snapshot.proposer
        decision = self.snapshot.decision
        assert proposer is not None and decision is not None
        if by.kind is not PrincipalKind.HUMAN:
            raise Forbidden(by.name, attempt, f"{by.kind.article} never approves or denies")
        if Role.APPROVER.value not in by.roles:
            raise Forbidden(by.name, attempt, "only humans with the approver role approve or deny")
        requirement = decision.requirement
        conflict = requirement.separation_conflict(by, proposer)
        if conflict is not None:
            raise Forbidden(by.name, attempt, conflict)
        if not requirement.admits(by, self.snapshot.escalated):
            raise Forbidden(
                by.name,
                attempt,
                f"this decision needs approval from {requirement.wanted(self.snapshot.escalated)}",
            )
        if self.snapshot.expired(at):
            raise Expired(
                self._name(),
                attempt,
                f"its approval window closed at {_when(self.snapshot.deadline)}",
            )
        if digest != self.snapshot.digest:
            raise IllegalTransition(
                self._name(),
                attempt,
                f"the vote is for digest {digest}, not {self.snapshot.digest}",
            )
        if any(v.by.id == by.id for v in self.snapshot.votes):
            raise IllegalTransition(self._name(), attempt, f"{by.name} has already voted")

    def _on_approve(self, event: Approve) -> list[State]:
        self._check_voter(event.by, "approve", event.digest, event.at)
        decision = self.snapshot.decision
        assert decision is not None
        vote = Vote(event.by, True, event.digest, event.reason, event.at)
        votes = (*self.snapshot.votes, vote)
        self.snapshot = replace(self.snapshot, votes=votes)
        if self._quorum():
            return [State.AUTHORIZED]
        return [State.PENDING_APPROVAL]

    def _on_deny(self, event: Deny) -> list[State]:
        if not event.reason.strip():
            raise IllegalTransition(self._name(), "deny", "a denial needs a reason")
        self._check_voter(event.by, "deny", event.digest, event.at)
        decision = self.snapshot.decision
        assert decision is not None
        votes = (*self.snapshot.votes, Vote(event.by, False, event.digest, event.reason, event.at))
        self.snapshot = replace(self.snapshot, votes=votes)
        if len(self.snapshot.denials) >= decision.requirement.denials:
            self.snapshot = replace(self.snapshot, reason=event.reason)
            return [State.DENIED]
        return [State.PENDING_APPROVAL]

    def _on_escalate(self, event: Escalate) -> list[State]:
        when = self.snapshot.escalate_at
        if when is None:
            raise IllegalTransition(self._name(), "escalate", "the decision has no escalation left")
        if event.at < when:
            raise IllegalTransition(
                self._name(), "escalate", f"it escalates at {_when(when)}, not before"
            )
        self.snapshot = replace(self.snapshot, escalated=True)
        return [State.PENDING_APPROVAL]

    def _on_cancel(self, event: Cancel) -> list[State]:
        proposer = self.snapshot.proposer
        assert proposer is not None
        if event.by.kind is PrincipalKind.RUNNER or (
            event.by.kind is PrincipalKind.AGENT and event.by.id != proposer.id
        ):
            raise Forbidden(event.by.name, "cancel", "only the proposing agent or a human cancels")
        self.snapshot = replace(
            self.snapshot, reason=event.reason or f"cancelled by {event.by.name}"
        )
        return [State.CANCELLED]

    def _on_lease(self, event: Lease) -> list[State]:
        if event.runner.kind is not PrincipalKind.RUNNER:
            raise Forbidden(event.runner.name, "lease", "only runners lease work")
        if not self.is_authorized():
            raise IllegalTransition(self._name(), "lease", "no allow and no approval quorum")
        if self.snapshot.expired(event.at):
            raise Expired(
                self._name(), "lease", f"its approval lapsed at {_when(self.snapshot.deadline)}"
            )
        decision = self.snapshot.decision
        assert decision is not None
        window = decision.obligations.change_window
        if window is not None and not window.contains(event.at):
            raise IllegalTransition(
                self._name(), "lease", f"outside its change window ({window.describe()})"
            )
        if self.snapshot.leases_granted and not self.may_run_again():
            raise IllegalTransition(self._name(), "lease", "its capsule was already leased once")
        self.snapshot = replace(
            self.snapshot,
            lease=LeaseGrant(event.runner.id, event.fencing_token),
            leases_granted=self.snapshot.leases_granted + 1,
        )
        return [State.EXECUTING]

    def _check_holder(self, runner: Principal, fencing_token: int, attempt: str) -> None:
        lease = self.snapshot.lease
        assert lease is not None
        if runner.id != lease.runner_id:
            raise Forbidden(runner.name, attempt, "another runner holds this lease")
        if fencing_token != lease.fencing_token:
            raise IllegalTransition(self._name(), attempt, "stale fencing token")

    def _on_report_execution(self, event: ReportExecution) -> list[State]:
        self._check_holder(event.runner, event.fencing_token, "report_execution")
        if not event.ok:
            self.snapshot = replace(self.snapshot, reason="execution failed")
            return [State.FAILED]
        return [State.VERIFYING]

    def _on_report_verification(self, event: ReportVerification) -> list[State]:
        self._check_holder(event.runner, event.fencing_token, "report_verification")
        if not event.ok:
            self.snapshot = replace(self.snapshot, reason="verification failed")
            return [State.FAILED]
        return [State.SUCCEEDED]

    def _on_requeue(self, event: Requeue) -> list[State]:
        if not self.may_run_again():
            content, decision = self.snapshot.content, self.snapshot.decision
            assert content is not None and decision is not None
            if not is_idempotent(content.kind):
                why = f"{content.kind} is not idempotent: it never runs twice"
            else:
                why = f"the decision allows {decision.retries} retries and none is left"
            raise IllegalTransition(self._name(), "requeue", why)
        # The lost lease stays recorded; the next lease replaces it, and no report is
        # accepted while the proposal is authorized again.
        return [State.AUTHORIZED]

    def _on_expire(self, event: Expire) -> list[State]:
        self.snapshot = replace(self.snapshot, reason=event.reason)
        return [State.EXPIRED]

    def _on_fail(self, event: Fail) -> list[State]:
        self.snapshot = replace(self.snapshot, reason=event.reason)
        return [State.FAILED]

    # ---- queries --------------------------------------------------------------------

    def is_authorized(self) -> bool:
        """Invariant 1: a policy allow, or a quorum of approvals bound to the digest."""
        decision = self.snapshot.decision
        if decision is None:
            return False
        if decision.outcome is Outcome.ALLOW:
            return True
        if decision.outcome is Outcome.REQUIRE_APPROVAL:
            return self._quorum()
        return False

    def _quorum(self) -> bool:
        """Enough distinct humans approved the digest that runs."""
        decision = self.snapshot.decision
        assert decision is not None
        bound = {v.by.id for v in self.snapshot.approvals if v.digest == self.snapshot.digest}
        return len(bound) >= decision.requirement.count

    def may_run_again(self) -> bool:
        """Whether another lease may follow the ones granted: only for an idempotent kind,
        and at most ``decision.retries`` times (a first lease needs no retry)."""
        snap = self.snapshot
        if snap.decision is None or snap.content is None:
            return False
        return is_idempotent(snap.content.kind) and snap.leases_granted <= snap.decision.retries

    def attempt(self) -> tuple[int, int]:
        """The next attempt's number and the most attempts the decision allows."""
        decision = self.snapshot.decision
        retries = decision.retries if decision is not None else 0
        return self.snapshot.leases_granted + 1, retries + 1

    def may_lease(self, at: datetime) -> bool:
        """Whether a runner could take this proposal at ``at`` (authorized, not lapsed,
        inside its change window, and not yet leased unless a retry is allowed)."""
        if self.snapshot.state is not State.AUTHORIZED:
            return False
        if self.snapshot.leases_granted and not self.may_run_again():
            return False
        if not self.is_authorized() or self.snapshot.expired(at):
            return False
        decision = self.snapshot.decision
        assert decision is not None
        window = decision.obligations.change_window
        return window is None or window.contains(at)

    def _name(self) -> str | None:
        return self.snapshot.state.value if self.snapshot.state else None
