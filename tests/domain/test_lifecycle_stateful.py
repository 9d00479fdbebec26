"""Random principals drive random events at several proposals; DESIGN.md's invariants hold.

A RuleBasedStateMachine fires propose / assess / validate / decide / approve / deny /
cancel / lease / report / requeue / expire / fail at one of up to three proposals, each event by a
principal drawn from humans (including the agents' owners), agents and runners. Refusals
(IllegalTransition, Forbidden) are legitimate outcomes; a small model says which events
must be refused (and which accepted), and after every event the invariants are checked on
every proposal. ``pytest --hypothesis-show-statistics`` shows how often runs reach
quorums, leases and success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from placet.domain.errors import Forbidden, IllegalTransition
from placet.domain.lifecycle import (
    Approve,
    Assess,
    Cancel,
    Decide,
    Decision,
    Deny,
    Event,
    Expire,
    Fail,
    Lease,
    Outcome,
    ProposalMachine,
    Propose,
    ReportExecution,
    ReportVerification,
    Requeue,
    Requirement,
    Snapshot,
    State,
    Transition,
    Validate,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from tests.domain.lifecycle_model import DESIGNED
from tests.domain.retry_kind import RETRIABLE

HUMAN, AGENT, RUNNER = PrincipalKind.HUMAN, PrincipalKind.AGENT, PrincipalKind.RUNNER
APPROVER = "approver"
HUMANS = [
    Principal("h-alice", "alice", HUMAN, teams=("payments",), roles=(APPROVER,)),
    Principal("h-bob", "bob", HUMAN, roles=("sre",)),  # not an approver: always refused
    Principal("h-carol", "carol", HUMAN, teams=("payments",), roles=("sre", APPROVER)),
    Principal("h-owen", "owen", HUMAN, roles=("sre", APPROVER)),  # owns bot-1
    Principal("h-olga", "olga", HUMAN, teams=("payments",), roles=(APPROVER,)),  # owns bot-2
]
AGENTS = [
    Principal("a-1", "bot-1", AGENT, owner="owen"),
    Principal("a-2", "bot-2", AGENT, owner="olga"),
    Principal("a-3", "bot-3", AGENT),
]
RUNNERS = [Principal(f"r-{n}", f"runner-{n}", RUNNER) for n in (1, 2, 3)]
EVERYONE = HUMANS + AGENTS + RUNNERS
RUNNER_IDS = {r.id for r in RUNNERS}
MARKS = ["alice", "bob", "carol", "owen", "olga", "team:payments", "role:sre", "team:dba"]
WRONG_DIGEST = "0" * 64
# Time is not what this test varies (test_authority_properties does): every decision is
# taken at T0 and every vote and lease follows within the default 24 h approval window.
T0 = datetime(2026, 11, 26, 9, tzinfo=UTC)
LATER = T0 + timedelta(minutes=10)

OUTCOME_TARGET = {
    Outcome.ALLOW: State.AUTHORIZED,
    Outcome.REQUIRE_APPROVAL: State.PENDING_APPROVAL,
    Outcome.DENY: State.DENIED,
}
SIMPLE_TARGET = {
    "propose": State.PROPOSED,
    "assess": State.ASSESSED,
    "validate": State.VALIDATING,
    "deny": State.DENIED,
    "cancel": State.CANCELLED,
    "lease": State.EXECUTING,
    "requeue": State.AUTHORIZED,
    "expire": State.EXPIRED,
    "fail": State.FAILED,
}

principals = st.sampled_from(EVERYONE)
which = st.integers(min_value=0, max_value=2)
# the selectors need no resolving here: what policy named is who is eligible
named = st.one_of(st.just(()), st.lists(st.sampled_from(MARKS), max_size=3).map(tuple))
requirements = st.builds(
    lambda count, marks: Requirement(count=count, from_=marks, eligible=marks),
    st.integers(min_value=0, max_value=3),
    named,
)
decisions = st.builds(
    Decision,
    outcome=st.sampled_from(
        [Outcome.ALLOW, Outcome.REQUIRE_APPROVAL, Outcome.REQUIRE_APPROVAL, Outcome.DENY]
    ),
    reasons=st.lists(st.sampled_from(["risky", "production", "low risk"]), max_size=2).map(tuple),
    requirement=requirements,
    policy_digest=st.just("b" * 64),
    retries=st.integers(min_value=0, max_value=2),
)
# restart is not idempotent (never runs twice); RETRIABLE is, and may run 1 + retries times
kinds = st.sampled_from(["restart", RETRIABLE])
# None stands for "the runner that holds the lease"; tokens are relative to the lease's own.
reporters = st.one_of(st.none(), principals)
tokens = st.sampled_from(["held", "held", "older", "newer"])
right_digest = st.sampled_from([True, True, True, False])
reasons = st.sampled_from(["", "   ", "not in the freeze window"])


@dataclass
class Tracked:
    """One proposal: its machine, and what the test saw happen to it."""

    machine: ProposalMachine
    state: State | None = None
    history: list[Transition] = field(default_factory=list)
    leases: int = 0
    requeues: int = 0
    leased_digest: str | None = None
    votes_seen: set[str] = field(default_factory=set)
    approvals_seen: set[str] = field(default_factory=set)


def _retry_left(t: Tracked) -> bool:
    """Whether the model allows another lease after the ones seen: an idempotent kind with
    retries left (computed from the kind's name and the decision, not by the machine)."""
    s = t.machine.snapshot
    if s.content is None or s.decision is None:
        return False
    return s.content.kind == RETRIABLE and t.leases <= s.decision.retries


def _authorized(s: Snapshot) -> bool:
    """Invariant 1, computed here from the recorded decision and votes, not by the machine."""
    decision = s.decision
    if decision is None or not s.digest or s.content is None or s.digest != s.content.digest:
        return False
    if decision.outcome is Outcome.ALLOW:
        return True
    if decision.outcome is not Outcome.REQUIRE_APPROVAL or decision.requirement.count < 1:
        return False
    assert s.proposer is not None
    approvers = {
        v.by.id
        for v in s.votes
        if v.approve
        and v.digest == s.digest
        and v.by.kind is HUMAN
        and APPROVER in v.by.roles
        and v.by.id != s.proposer.id
        and v.by.name != s.proposer.owner
        and decision.requirement.admits(v.by)
    }
    return len(approvers) >= decision.requirement.count


class Lifecycle(RuleBasedStateMachine):
    """The model: which events must be refused, and the invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.tracked: list[Tracked] = []
        self.next_token = 100

    # ---- applying one event -----------------------------------------------------

    def _expected_refusal(self, t: Tracked, ev: Event) -> str | None:
        """Why ``ev`` must be refused in the current snapshot, or None if it must be accepted."""
        s = t.machine.snapshot
        if s.state not in DESIGNED[ev.name][0]:
            return "table"
        proposer = s.proposer
        if isinstance(ev, Propose):
            if ev.by.kind is not AGENT or ev.content.agent != ev.by.id:
                return "forbidden"
            return None
        assert proposer is not None
        if isinstance(ev, Decide):
            d = ev.decision
            bad = d.outcome is Outcome.REQUIRE_APPROVAL and d.requirement.count < 1
            return "no count" if bad else None
        if isinstance(ev, Approve | Deny):
            assert s.decision is not None
            if isinstance(ev, Deny) and not ev.reason.strip():
                return "no reason"
            if ev.by.kind is not HUMAN or APPROVER not in ev.by.roles:
                return "forbidden"
            if ev.by.id == proposer.id or ev.by.name == proposer.owner:
                return "forbidden"
            if not s.decision.requirement.admits(ev.by):  # denials too
                return "forbidden"
            if ev.digest != s.digest or ev.by.id in t.votes_seen:
                return "illegal vote"
            return None
        if isinstance(ev, Cancel):
            if ev.by.kind is RUNNER or (ev.by.kind is AGENT and ev.by.id != proposer.id):
                return "forbidden"
            return None
        if isinstance(ev, Lease):
            if ev.runner.kind is not RUNNER:
                return "forbidden"
            return "second lease" if t.leases and not _retry_left(t) else None
        if isinstance(ev, Requeue):
            return None if _retry_left(t) else "no retry"
        if isinstance(ev, ReportExecution | ReportVerification):
            assert s.lease is not None
            if ev.runner.id != s.lease.runner_id:
                return "forbidden"
            return "stale token" if ev.fencing_token != s.lease.fencing_token else None
        return None

    def _expected_targets(self, t: Tracked, ev: Event) -> list[State]:
        """Where an accepted ``ev`` must take the proposal, hop by hop."""
        s = t.machine.snapshot
        if isinstance(ev, Decide):
            return [State.DECIDED, OUTCOME_TARGET[ev.decision.outcome]]
        if isinstance(ev, Approve):
            assert s.decision is not None
            quorum = len(t.approvals_seen) + 1 >= s.decision.requirement.count
            return [State.AUTHORIZED if quorum else State.PENDING_APPROVAL]
        if isinstance(ev, ReportExecution):
            return [State.VERIFYING if ev.ok else State.FAILED]
        if isinstance(ev, ReportVerification):
            return [State.SUCCEEDED if ev.ok else State.FAILED]
        return [SIMPLE_TARGET[ev.name]]

    def _apply(self, t: Tracked, ev: Event) -> list[Transition] | None:
        expected = self._expected_refusal(t, ev)
        targets = self._expected_targets(t, ev) if expected is None else []
        before = t.machine.snapshot
        try:
            transitions = t.machine.handle(ev)
        except (IllegalTransition, Forbidden) as exc:
            event(f"refused {ev.name}: {expected}")
            # a refused event changes nothing
            assert t.machine.snapshot == before
            self._check_invariants()
            assert expected is not None, f"{ev} was refused: {exc}"
            assert isinstance(exc, Forbidden if expected == "forbidden" else IllegalTransition)
            if isinstance(exc, IllegalTransition):
                assert exc.attempt == ev.name
                assert exc.state == (before.state.value if before.state else None)
            return None
        assert expected is None, f"{ev} in {before.state} was accepted, expected {expected}"
        # no state without evidence: a chain of transitions from the old state to the new one
        assert [tr.target for tr in transitions] == targets
        assert transitions[0].source == before.state == t.state
        for a, b in pairwise(transitions):
            assert a.target == b.source
        assert transitions[-1].target == t.machine.state
        for tr in transitions:
            assert tr.event == ev.name
            assert tr.stage is DESIGNED[ev.name][1]
        t.state = transitions[-1].target
        t.history.extend(transitions)
        self._note(t, ev)
        event(f"reached {t.state}")
        self._check_invariants()
        return transitions

    def _pick(self, i: int) -> Tracked:
        return self.tracked[i % len(self.tracked)]

    def _holder(self, t: Tracked, who: Principal | None) -> Principal:
        lease = t.machine.snapshot.lease
        if who is not None:
            return who
        if lease is None:
            return RUNNERS[0]
        return next(r for r in RUNNERS if r.id == lease.runner_id)

    def _token(self, t: Tracked, choice: str) -> int:
        lease = t.machine.snapshot.lease
        held = lease.fencing_token if lease else self.next_token
        return {"held": held, "older": held - 1, "newer": held + 1}[choice]

    # ---- rules ------------------------------------------------------------------

    @precondition(lambda self: len(self.tracked) < 3)
    @rule(
        by=st.one_of(st.none(), principals),
        agent=st.sampled_from(AGENTS),
        intent=st.sampled_from(["restart payments", "scale ledger", "drop cache"]),
        kind=kinds,
    )
    def new_proposal(self, by: Principal | None, agent: Principal, intent: str, kind: str) -> None:
        """A proposal made by the agent it names (when ``by`` is None) or by someone else."""
        t = Tracked(ProposalMachine())
        self.tracked.append(t)
        content = ProposalContent(
            agent=agent.id,
            kind=kind,
            targets=("service:payments",),
            parameters={"n": len(self.tracked)},
            environment="production",
            intent=intent,
        )
        self._apply(t, Propose(agent if by is None else by, content))

    @precondition(lambda self: self.tracked)
    @rule(i=which, data=st.data())
    def advance(self, i: int, data: st.DataObject) -> None:
        """Up to six events that would move one proposal on, each with random data.

        The other rules fire any event at any time and are mostly refused; this one keeps
        proposals moving, so that runs reach quorums, leases, reports and success. The
        principals are still random (the agent's owner may try to approve; any runner may
        lease), and the invariants are checked after each event.
        """
        t = self._pick(i)
        for _ in range(data.draw(st.integers(min_value=1, max_value=6), label="events")):
            ev = self._next_event(t, data)
            self._apply(t, ev)

    def _next_event(self, t: Tracked, data: st.DataObject) -> Event:
        s = t.machine.snapshot
        if s.state is None:
            agent = data.draw(st.sampled_from(AGENTS), label="agent")
            kind = data.draw(kinds, label="kind")
            content = ProposalContent(agent.id, kind, ("svc",), {}, "staging", "scale up")
            return Propose(agent, content)
        if s.state is State.PROPOSED:
            return Assess()
        if s.state is State.ASSESSED and data.draw(st.booleans(), label="validate first"):
            return Validate()
        if s.state in (State.ASSESSED, State.VALIDATING):
            return Decide(data.draw(decisions, label="decision"), T0)
        if s.state is State.PENDING_APPROVAL:
            return Approve(data.draw(st.sampled_from(HUMANS), label="approver"), s.digest, LATER)
        if s.state is State.AUTHORIZED:
            runner = data.draw(st.sampled_from(RUNNERS), label="runner")
            return Lease(runner, self._fresh_token(), LATER)
        if s.state in (State.EXECUTING, State.VERIFYING) and data.draw(
            st.sampled_from([False, False, True]), label="runner lost"
        ):
            return Requeue("runner lost")
        ok = data.draw(st.sampled_from([True, True, True, False]), label="ok")
        runner = self._holder(t, data.draw(st.none() | st.sampled_from(RUNNERS), label="runner"))
        token = self._token(t, data.draw(tokens, label="token"))
        if s.state is State.EXECUTING:
            return ReportExecution(runner, token, ok)
        if s.state is State.VERIFYING:
            return ReportVerification(runner, token, ok)
        return Assess()  # a closed proposal: refused like everything else

    def _fresh_token(self) -> int:
        self.next_token += 1
        return self.next_token

    def _note(self, t: Tracked, ev: Event) -> None:
        """Remember what an accepted event means for the model."""
        if isinstance(ev, Approve | Deny):
            t.votes_seen.add(ev.by.id)
            if isinstance(ev, Approve):
                t.approvals_seen.add(ev.by.id)
            if t.state is State.AUTHORIZED:
                event("authorized by a quorum of approvals")
        if isinstance(ev, Lease):
            t.leases += 1
            t.leased_digest = t.machine.snapshot.digest
            if t.leases > 1:
                event("an idempotent capsule was leased again")
        if isinstance(ev, Requeue):
            t.requeues += 1

    @precondition(lambda self: self.tracked)
    @rule(i=which, by=principals)
    def propose_again(self, i: int, by: Principal) -> None:
        t = self._pick(i)
        content = ProposalContent(by.id, "restart", ("x",), {}, "production", "again")
        self._apply(t, Propose(by, content))

    @precondition(lambda self: self.tracked)
    @rule(i=which)
    def assess(self, i: int) -> None:
        self._apply(self._pick(i), Assess())

    @precondition(lambda self: self.tracked)
    @rule(i=which)
    def validate(self, i: int) -> None:
        self._apply(self._pick(i), Validate())

    @precondition(lambda self: self.tracked)
    @rule(i=which, decision=decisions)
    def decide(self, i: int, decision: Decision) -> None:
        self._apply(self._pick(i), Decide(decision, T0))

    @precondition(lambda self: self.tracked)
    @rule(i=which, by=principals, right_digest=right_digest)
    def approve(self, i: int, by: Principal, right_digest: bool) -> None:
        t = self._pick(i)
        digest = t.machine.snapshot.digest if right_digest else WRONG_DIGEST
        self._apply(t, Approve(by, digest, LATER))

    @precondition(lambda self: self.tracked)
    @rule(i=which, by=principals, right_digest=right_digest, reason=reasons)
    def deny(self, i: int, by: Principal, right_digest: bool, reason: str) -> None:
        t = self._pick(i)
        digest = t.machine.snapshot.digest if right_digest else WRONG_DIGEST
        self._apply(t, Deny(by, digest, reason, LATER))

    @precondition(lambda self: self.tracked)
    @rule(i=which, how=st.sampled_from(["cancel", "expire", "fail"]), by=principals, reason=reasons)
    def side_exit(self, i: int, how: str, by: Principal, reason: str) -> None:
        """Cancel (by anyone), expire or fail: one rule, so side exits are not drawn 3x as often."""
        events: dict[str, Event] = {
            "cancel": Cancel(by, reason),
            "expire": Expire("no decision in time"),
            "fail": Fail("the ledger is unavailable"),
        }
        self._apply(self._pick(i), events[how])

    @precondition(lambda self: self.tracked)
    @rule(i=which, runner=st.one_of(st.sampled_from(RUNNERS), principals))
    def lease(self, i: int, runner: Principal) -> None:
        t = self._pick(i)
        no_more = t.leases > 0 and not _retry_left(t)
        accepted = self._apply(t, Lease(runner, self._fresh_token(), LATER)) is not None
        if no_more:
            assert not accepted, "a second lease was granted"
            event("second lease refused")

    @precondition(lambda self: self.tracked)
    @rule(i=which)
    def requeue(self, i: int) -> None:
        """The runner is lost: requeued only for an idempotent kind with retries left."""
        self._apply(self._pick(i), Requeue("runner lost"))

    @precondition(lambda self: self.tracked)
    @rule(i=which, who=reporters, token=tokens, ok=st.booleans())
    def report_execution(self, i: int, who: Principal | None, token: str, ok: bool) -> None:
        t = self._pick(i)
        self._apply(t, ReportExecution(self._holder(t, who), self._token(t, token), ok))

    @precondition(lambda self: self.tracked)
    @rule(i=which, who=reporters, token=tokens, ok=st.booleans())
    def report_verification(self, i: int, who: Principal | None, token: str, ok: bool) -> None:
        t = self._pick(i)
        self._apply(t, ReportVerification(self._holder(t, who), self._token(t, token), ok))

    def teardown(self) -> None:
        for state in {t.state for t in self.tracked}:
            event(f"a run ended with a proposal {state}")
        if any(t.leases for t in self.tracked):
            event("a run leased a capsule")
        if any(t.votes_seen for t in self.tracked):
            event("a run recorded a vote")

    # ---- invariants, after every step -------------------------------------------

    def _check_invariants(self) -> None:
        """All four, also called after each event inside a multi-event rule."""
        self.no_state_without_evidence()
        self.nothing_runs_without_allow_or_quorum()
        self.only_other_humans_vote()
        self.a_capsule_runs_at_most_once()

    @invariant()
    def no_state_without_evidence(self) -> None:
        for t in self.tracked:
            s = t.machine.snapshot
            assert s.state == t.state
            previous: State | None = None
            for tr in t.history:
                assert tr.source == previous
                assert tr.stage is DESIGNED[tr.event][1]
                previous = tr.target
            assert previous == s.state
            if s.state is not None:
                assert t.history[0].event == "propose"
                assert s.content is not None and s.digest == s.content.digest
                assert s.proposer is not None and s.proposer.kind is AGENT
                assert s.proposer.id == s.content.agent
            if s.state is State.DENIED:
                assert s.decision is not None
                assert s.decision.outcome is Outcome.DENY or any(not v.approve for v in s.votes)

    @invariant()
    def nothing_runs_without_allow_or_quorum(self) -> None:
        for t in self.tracked:
            s = t.machine.snapshot
            ran = s.state in {State.EXECUTING, State.VERIFYING, State.SUCCEEDED}
            if ran or s.state is State.AUTHORIZED or s.leases_granted or t.leases:
                assert _authorized(s), f"{s.state} without allow or quorum: {s}"
                assert t.machine.is_authorized()
                assert not any(not v.approve for v in s.votes)
            if ran or s.leases_granted or t.leases:
                assert s.lease is not None and s.lease.runner_id in RUNNER_IDS
                assert s.content is not None
                assert t.leased_digest == s.digest == s.content.digest
            if s.state is State.SUCCEEDED:
                events = [tr.event for tr in t.history]
                assert events[-3:] == ["lease", "report_execution", "report_verification"]

    @invariant()
    def only_other_humans_vote(self) -> None:
        for t in self.tracked:
            s = t.machine.snapshot
            if not s.votes:
                continue
            assert s.proposer is not None and s.decision is not None
            ids = [v.by.id for v in s.votes]
            assert len(ids) == len(set(ids)) == len(t.votes_seen)
            for v in s.votes:
                assert v.by.kind is HUMAN
                assert APPROVER in v.by.roles
                assert v.by.id != s.proposer.id
                assert v.by.name != s.proposer.owner
                assert v.digest == s.digest
                assert s.decision.requirement.admits(v.by)

    @invariant()
    def a_capsule_runs_at_most_once(self) -> None:
        for t in self.tracked:
            s = t.machine.snapshot
            leases = sum(1 for tr in t.history if tr.event == "lease")
            requeues = sum(1 for tr in t.history if tr.event == "requeue")
            assert s.leases_granted == leases == t.leases
            assert requeues == t.requeues <= leases
            if s.content is None or s.content.kind != RETRIABLE or s.decision is None:
                assert leases <= 1 and requeues == 0
            else:
                assert leases <= 1 + s.decision.retries


Lifecycle.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLifecycle = Lifecycle.TestCase
