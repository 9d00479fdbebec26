"""The proposal lifecycle as a pure state machine: a transition table and no I/O.

Every accepted event returns the transitions it caused; the caller records each one
with its statement in one database transaction (invariant 4). Events the table does
not allow raise :class:`IllegalTransition`; events from the wrong principal raise
:class:`Forbidden`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from placet.domain.errors import Forbidden, IllegalTransition
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent


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
    CLOSURE = "closure"


class Outcome(enum.StrEnum):
    """What policy said."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


# The table: event name -> (states it is accepted in, stage it is recorded under).
# Targets depend on the event's data and are computed in ProposalMachine.handle.
TABLE: dict[str, tuple[frozenset[State | None], Stage]] = {
    "propose": (frozenset({None}), Stage.PROPOSAL),
    "assess": (frozenset({State.PROPOSED}), Stage.ASSESSMENT),
    "validate": (frozenset({State.ASSESSED}), Stage.VALIDATION),
    "decide": (frozenset({State.ASSESSED, State.VALIDATING}), Stage.DECISION),
    "approve": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "deny": (frozenset({State.PENDING_APPROVAL}), Stage.APPROVAL),
    "cancel": (OPEN - RUNNING, Stage.CLOSURE),
    "lease": (frozenset({State.AUTHORIZED}), Stage.CAPSULE),
    "report_execution": (frozenset({State.EXECUTING}), Stage.EXECUTION),
    "report_verification": (frozenset({State.VERIFYING}), Stage.VERIFICATION),
    "expire": (OPEN - RUNNING, Stage.CLOSURE),
    "fail": (OPEN, Stage.CLOSURE),
}


@dataclass(frozen=True, slots=True)
class Requirement:
    """How many human approvals a decision needs, and from whom (names, ``team:T``, ``role:R``)."""

    count: int = 1
    any_of: tuple[str, ...] = ()

    def admits(self, human: Principal) -> bool:
        """Whether ``human`` is one of the approvers this requirement names."""
        if not self.any_of:
            return True
        marks = {
            human.name,
            *(f"team:{t}" for t in human.teams),
            *(f"role:{r}" for r in human.roles),
        }
        return bool(marks & set(self.any_of))


@dataclass(frozen=True, slots=True)
class Decision:
    """Policy's answer, bound to the digest of the bundle that gave it."""

    outcome: Outcome
    reasons: tuple[str, ...] = ()
    requirement: Requirement = field(default_factory=lambda: Requirement(count=0))
    policy_digest: str = ""


@dataclass(frozen=True, slots=True)
class Vote:
    """A named human's yes or no, bound to one proposal digest."""

    by: Principal
    approve: bool
    digest: str
    reason: str = ""


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
    name = "decide"


@dataclass(frozen=True, slots=True)
class Approve:
    by: Principal
    digest: str
    name = "approve"


@dataclass(frozen=True, slots=True)
class Deny:
    by: Principal
    digest: str
    reason: str
    name = "deny"


@dataclass(frozen=True, slots=True)
class Cancel:
    by: Principal
    reason: str = ""
    name = "cancel"


@dataclass(frozen=True, slots=True)
class Lease:
    runner: Principal
    fencing_token: int
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
    | Cancel
    | Lease
    | ReportExecution
    | ReportVerification
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
    votes: tuple[Vote, ...] = ()
    lease: LeaseGrant | None = None
    leases_granted: int = 0
    reason: str = ""

    @property
    def approvals(self) -> tuple[Vote, ...]:
        """The yes votes."""
        return tuple(v for v in self.votes if v.approve)


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
        if decision.outcome is Outcome.REQUIRE_APPROVAL and decision.requirement.count < 1:
            raise IllegalTransition(
                self._name(), "decide", "require_approval needs at least one approval"
            )
        self.snapshot = replace(self.snapshot, decision=decision)
        target = {
            Outcome.ALLOW: State.AUTHORIZED,
            Outcome.REQUIRE_APPROVAL: State.PENDING_APPROVAL,
            Outcome.DENY: State.DENIED,
        }[decision.outcome]
        if target is State.DENIED:
            self.snapshot = replace(self.snapshot, reason="; ".join(decision.reasons))
        return [State.DECIDED, target]

    def _check_voter(self, by: Principal, attempt: str, digest: str) -> None:
        proposer = self.snapshot.proposer
        assert proposer is not None
        if by.kind is not PrincipalKind.HUMAN:
            raise Forbidden(by.name, attempt, f"{by.kind.article} never approves or denies")
        if by.id == proposer.id or (proposer.owner is not None and by.name == proposer.owner):
            raise Forbidden(
                by.name, attempt, "nobody decides on a proposal they or their agent made"
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
        self._check_voter(event.by, "approve", event.digest)
        decision = self.snapshot.decision
        assert decision is not None
        if not decision.requirement.admits(event.by):
            wanted = ", ".join(decision.requirement.any_of)
            raise Forbidden(event.by.name, "approve", f"this decision needs approval from {wanted}")
        votes = (*self.snapshot.votes, Vote(event.by, True, event.digest))
        self.snapshot = replace(self.snapshot, votes=votes)
        if sum(1 for v in votes if v.approve) >= decision.requirement.count:
            return [State.AUTHORIZED]
        return [State.PENDING_APPROVAL]

    def _on_deny(self, event: Deny) -> list[State]:
        if not event.reason.strip():
            raise IllegalTransition(self._name(), "deny", "a denial needs a reason")
        self._check_voter(event.by, "deny", event.digest)
        votes = (*self.snapshot.votes, Vote(event.by, False, event.digest, event.reason))
        self.snapshot = replace(self.snapshot, votes=votes, reason=event.reason)
        return [State.DENIED]

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
        if self.snapshot.leases_granted:
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
            bound = [v for v in self.snapshot.approvals if v.digest == self.snapshot.digest]
            return len(bound) >= decision.requirement.count
        return False

    def _name(self) -> str | None:
        return self.snapshot.state.value if self.snapshot.state else None
