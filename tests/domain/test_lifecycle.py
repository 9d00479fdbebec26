"""The lifecycle table, its happy paths, and who may do what (Forbidden)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from placet.domain.authority import ChangeWindow, Escalation, Obligations
from placet.domain.errors import Forbidden, IllegalTransition
from placet.domain.lifecycle import (
    OPEN,
    RUNNING,
    TABLE,
    TERMINAL,
    Approve,
    Assess,
    Cancel,
    Decide,
    Decision,
    Deny,
    Escalate,
    Event,
    Expire,
    Expired,
    Fail,
    Lease,
    Outcome,
    ProposalMachine,
    Propose,
    ReportExecution,
    ReportVerification,
    Requeue,
    Requirement,
    Stage,
    State,
    Transition,
    Validate,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from tests.domain.lifecycle_model import CLOSED, DESIGNED
from tests.domain.retry_kind import RETRIABLE

HUMAN, AGENT, RUNNER = PrincipalKind.HUMAN, PrincipalKind.AGENT, PrincipalKind.RUNNER
APPROVER = "approver"
ALICE = Principal("h-alice", "alice", HUMAN, teams=("payments",), roles=(APPROVER,))
BOB = Principal("h-bob", "bob", HUMAN, roles=("sre", APPROVER))
CAROL = Principal("h-carol", "carol", HUMAN, roles=(APPROVER,))
OWEN = Principal("h-owen", "owen", HUMAN, roles=(APPROVER,))  # owns BOT
BOT = Principal("a-bot", "bot", AGENT, owner="owen")
OTHER_BOT = Principal("a-other", "other-bot", AGENT, owner="alice")
R1 = Principal("r-1", "runner-1", RUNNER)
R2 = Principal("r-2", "runner-2", RUNNER)

CONTENT = ProposalContent(
    agent=BOT.id,
    kind="restart",
    targets=("service:payments",),
    parameters={},
    environment="production",
    intent="restart payments",
)
DIGEST = CONTENT.digest
ALLOW = Decision(Outcome.ALLOW, ("low risk",), policy_digest="p" * 64)
DENY = Decision(Outcome.DENY, ("touches the ledger", "outside the window"))
LEADS = Escalation(after=3600, to=("group:leads",), eligible=("group:leads",))
QUORUM_2 = Decision(
    Outcome.REQUIRE_APPROVAL, ("production",), Requirement(count=2, escalation=LEADS)
)
TOKEN = 7
T0 = datetime(2026, 11, 26, 9, tzinfo=UTC)  # a Thursday
SOON = T0 + timedelta(minutes=5)


def run(machine: ProposalMachine, *events: Event) -> list[Transition]:
    """Apply events in order, returning every transition they caused."""
    transitions: list[Transition] = []
    for event in events:
        transitions.extend(machine.handle(event))
    return transitions


def machine_in(state: State | None) -> ProposalMachine:
    """A machine driven through real events to ``state`` (DECIDED is transient: forged)."""
    machine = ProposalMachine()
    paths: dict[State | None, list[Event]] = {
        None: [],
        State.PROPOSED: [Propose(BOT, CONTENT)],
        State.ASSESSED: [Propose(BOT, CONTENT), Assess()],
        State.VALIDATING: [Propose(BOT, CONTENT), Assess(), Validate()],
        State.PENDING_APPROVAL: [Propose(BOT, CONTENT), Assess(), Decide(QUORUM_2, T0)],
        State.AUTHORIZED: [Propose(BOT, CONTENT), Assess(), Decide(ALLOW, T0)],
        State.EXECUTING: [
            Propose(BOT, CONTENT),
            Assess(),
            Decide(ALLOW, T0),
            Lease(R1, TOKEN, SOON),
        ],
        State.VERIFYING: [
            Propose(BOT, CONTENT),
            Assess(),
            Decide(ALLOW, T0),
            Lease(R1, TOKEN, SOON),
            ReportExecution(R1, TOKEN, ok=True),
        ],
        State.SUCCEEDED: [
            Propose(BOT, CONTENT),
            Assess(),
            Decide(ALLOW, T0),
            Lease(R1, TOKEN, SOON),
            ReportExecution(R1, TOKEN, ok=True),
            ReportVerification(R1, TOKEN, ok=True),
        ],
        State.FAILED: [Propose(BOT, CONTENT), Fail("graph unavailable")],
        State.DENIED: [Propose(BOT, CONTENT), Assess(), Decide(DENY, T0)],
        State.CANCELLED: [Propose(BOT, CONTENT), Cancel(BOT)],
        State.EXPIRED: [Propose(BOT, CONTENT), Expire("too old")],
    }
    if state is State.DECIDED:
        machine = machine_in(State.ASSESSED)
        machine.snapshot = replace(machine.snapshot, state=State.DECIDED, decision=ALLOW)
        return machine
    run(machine, *paths[state])
    assert machine.state is state
    return machine


def retriable_in(state: State | None) -> ProposalMachine:
    """Like :func:`machine_in`, but for an idempotent kind whose decision allows a retry
    (the only proposals a requeue is valid for)."""
    machine = machine_in(state)
    if state not in (State.EXECUTING, State.VERIFYING):
        return machine
    content = replace(CONTENT, kind=RETRIABLE)
    again = ProposalMachine()
    run(again, Propose(BOT, content), Assess(), Decide(replace(ALLOW, retries=1), T0))
    run(again, Lease(R1, TOKEN, SOON))
    if state is State.VERIFYING:
        run(again, ReportExecution(R1, TOKEN, ok=True))
    assert again.state is state
    return again


def valid_event(name: str) -> Event:
    """An event of type ``name`` whose data is acceptable wherever the table allows it."""
    events: dict[str, Event] = {
        "propose": Propose(BOT, CONTENT),
        "assess": Assess(),
        "validate": Validate(),
        "decide": Decide(ALLOW, T0),
        "approve": Approve(ALICE, DIGEST, SOON),
        "deny": Deny(ALICE, DIGEST, "not during the freeze", SOON),
        "escalate": Escalate(T0 + timedelta(hours=2)),
        "cancel": Cancel(CAROL, "no longer needed"),
        "lease": Lease(R1, TOKEN, SOON),
        "report_execution": ReportExecution(R1, TOKEN, ok=True),
        "report_verification": ReportVerification(R1, TOKEN, ok=True),
        "requeue": Requeue("runner lost; retrying (attempt 2 of 2)"),
        "expire": Expire("expired"),
        "fail": Fail("ledger unavailable"),
    }
    assert set(events) == set(TABLE)
    return events[name]


STATES: list[State | None] = [None, *State]
ILLEGAL = [(s, e) for s in STATES for e in TABLE if s not in TABLE[e][0]]
LEGAL = [(s, e) for s in STATES for e in TABLE if s in TABLE[e][0]]


# ---- the table ---------------------------------------------------------------------


def test_the_table_is_the_designed_one() -> None:
    assert TABLE == DESIGNED
    assert TERMINAL == CLOSED


def test_the_table_covers_the_design() -> None:
    assert frozenset({None}) == TABLE["propose"][0]
    assert all(TABLE[e][0] <= OPEN for e in TABLE if e != "propose")
    assert not any(TABLE[e][0] & TERMINAL for e in TABLE)
    assert TABLE["cancel"][0].isdisjoint(RUNNING)
    assert TABLE["expire"][0].isdisjoint(RUNNING)
    assert TABLE["fail"][0] >= RUNNING
    assert len(ILLEGAL) + len(LEGAL) == len(STATES) * len(TABLE)


@pytest.mark.parametrize(("state", "name"), ILLEGAL)
def test_every_pair_outside_the_table_is_illegal(state: State | None, name: str) -> None:
    machine = machine_in(state)
    before = machine.snapshot
    with pytest.raises(IllegalTransition) as caught:
        machine.handle(valid_event(name))
    message = str(caught.value)
    assert (state.value if state else "(no proposal)") in message
    assert name in message
    assert caught.value.state == (state.value if state else None)
    assert caught.value.attempt == name
    assert machine.snapshot == before


@pytest.mark.parametrize(("state", "name"), LEGAL)
def test_every_pair_in_the_table_is_accepted_with_valid_data(
    state: State | None, name: str
) -> None:
    machine = retriable_in(state) if name == "requeue" else machine_in(state)
    transitions = machine.handle(valid_event(name))
    assert transitions[0].source == state
    assert transitions[-1].target == machine.state
    assert all(t.stage is TABLE[name][1] and t.event == name for t in transitions)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_nothing_leaves_a_terminal_state(state: State) -> None:
    for name in TABLE:
        machine = machine_in(state)
        with pytest.raises(IllegalTransition):
            machine.handle(valid_event(name))
        assert machine.state is state


# ---- happy paths -------------------------------------------------------------------


def test_allow_runs_to_success() -> None:
    machine = ProposalMachine()
    transitions = run(
        machine,
        Propose(BOT, CONTENT),
        Assess(),
        Validate(),
        Decide(ALLOW, T0),
        Lease(R1, TOKEN, SOON),
        ReportExecution(R1, TOKEN, ok=True),
        ReportVerification(R1, TOKEN, ok=True),
    )
    assert [(t.source, t.target, t.stage) for t in transitions] == [
        (None, State.PROPOSED, Stage.PROPOSAL),
        (State.PROPOSED, State.ASSESSED, Stage.ASSESSMENT),
        (State.ASSESSED, State.VALIDATING, Stage.VALIDATION),
        (State.VALIDATING, State.DECIDED, Stage.DECISION),
        (State.DECIDED, State.AUTHORIZED, Stage.DECISION),
        (State.AUTHORIZED, State.EXECUTING, Stage.CAPSULE),
        (State.EXECUTING, State.VERIFYING, Stage.EXECUTION),
        (State.VERIFYING, State.SUCCEEDED, Stage.VERIFICATION),
    ]
    snapshot = machine.snapshot
    assert snapshot.state is State.SUCCEEDED
    assert snapshot.proposer == BOT
    assert snapshot.digest == DIGEST
    assert snapshot.decision == ALLOW
    assert snapshot.lease is not None
    assert (snapshot.lease.runner_id, snapshot.lease.fencing_token) == (R1.id, TOKEN)
    assert snapshot.leases_granted == 1


def test_require_approval_with_a_quorum_of_two() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    assert not machine.is_authorized()
    first = machine.handle(Approve(ALICE, DIGEST, SOON))
    assert [(t.source, t.target) for t in first] == [
        (State.PENDING_APPROVAL, State.PENDING_APPROVAL)
    ]
    assert first[0].stage is Stage.APPROVAL
    assert not machine.is_authorized()
    with pytest.raises(IllegalTransition):
        machine.handle(Lease(R1, TOKEN, SOON))
    second = machine.handle(Approve(BOB, DIGEST, SOON))
    assert [(t.source, t.target) for t in second] == [(State.PENDING_APPROVAL, State.AUTHORIZED)]
    assert machine.is_authorized()
    assert [v.by for v in machine.snapshot.approvals] == [ALICE, BOB]
    assert all(v.digest == DIGEST for v in machine.snapshot.votes)
    run(
        machine,
        Lease(R2, TOKEN, SOON),
        ReportExecution(R2, TOKEN, ok=True),
        ReportVerification(R2, TOKEN, ok=True),
    )
    assert machine.state is State.SUCCEEDED


def test_quorum_from_named_approvers_teams_and_roles() -> None:
    marks = ("carol", "team:payments", "role:sre")
    requirement = Requirement(count=2, from_=marks, eligible=marks)
    for pair in [(ALICE, BOB), (CAROL, ALICE), (BOB, CAROL)]:
        machine = machine_in(State.ASSESSED)
        run(machine, Decide(Decision(Outcome.REQUIRE_APPROVAL, requirement=requirement), T0))
        run(machine, *(Approve(h, DIGEST, SOON) for h in pair))
        assert machine.state is State.AUTHORIZED


def test_deny_by_policy() -> None:
    machine = machine_in(State.ASSESSED)
    transitions = machine.handle(Decide(DENY, T0))
    assert [(t.source, t.target) for t in transitions] == [
        (State.ASSESSED, State.DECIDED),
        (State.DECIDED, State.DENIED),
    ]
    assert machine.snapshot.reason == "touches the ledger; outside the window"
    assert not machine.is_authorized()


def test_deny_by_a_human_needs_a_reason() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    for reason in ["", "   "]:
        with pytest.raises(IllegalTransition, match="reason"):
            machine.handle(Deny(ALICE, DIGEST, reason, SOON))
        assert machine.state is State.PENDING_APPROVAL
        assert machine.snapshot.votes == ()
    transitions = machine.handle(Deny(ALICE, DIGEST, "not during the freeze", SOON))
    assert [(t.source, t.target, t.stage) for t in transitions] == [
        (State.PENDING_APPROVAL, State.DENIED, Stage.APPROVAL)
    ]
    assert machine.snapshot.reason == "not during the freeze"
    (vote,) = machine.snapshot.votes
    assert (vote.by, vote.approve, vote.digest) == (ALICE, False, DIGEST)


def test_a_deny_after_one_approval_still_denies() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    run(machine, Approve(ALICE, DIGEST, SOON), Deny(BOB, DIGEST, "no", SOON))
    assert machine.state is State.DENIED
    assert not machine.is_authorized()


@pytest.mark.parametrize("decision", [ALLOW, DENY, QUORUM_2])
@pytest.mark.parametrize("via_validation", [False, True])
def test_decide_produces_two_transitions(decision: Decision, via_validation: bool) -> None:
    machine = machine_in(State.VALIDATING if via_validation else State.ASSESSED)
    source = machine.state
    transitions = machine.handle(Decide(decision, T0))
    target = {
        Outcome.ALLOW: State.AUTHORIZED,
        Outcome.DENY: State.DENIED,
        Outcome.REQUIRE_APPROVAL: State.PENDING_APPROVAL,
    }[decision.outcome]
    assert [(t.source, t.target) for t in transitions] == [
        (source, State.DECIDED),
        (State.DECIDED, target),
    ]
    assert all(t.stage is Stage.DECISION and t.event == "decide" for t in transitions)
    assert machine.state is target
    assert machine.snapshot.decision == decision


def test_require_approval_without_a_count_is_refused() -> None:
    machine = machine_in(State.ASSESSED)
    with pytest.raises(IllegalTransition, match="at least one approval"):
        machine.handle(Decide(Decision(Outcome.REQUIRE_APPROVAL, requirement=Requirement(0)), T0))
    assert machine.state is State.ASSESSED
    assert machine.snapshot.decision is None


def test_failed_execution_and_failed_verification() -> None:
    machine = machine_in(State.EXECUTING)
    machine.handle(ReportExecution(R1, TOKEN, ok=False))
    assert (machine.state, machine.snapshot.reason) == (State.FAILED, "execution failed")
    machine = machine_in(State.VERIFYING)
    machine.handle(ReportVerification(R1, TOKEN, ok=False))
    assert (machine.state, machine.snapshot.reason) == (State.FAILED, "verification failed")


def test_cancel_records_who_cancelled() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    transitions = machine.handle(Cancel(BOT))
    assert [(t.target, t.stage) for t in transitions] == [(State.CANCELLED, Stage.CLOSURE)]
    assert machine.snapshot.reason == "cancelled by bot"


# ---- forbidden ---------------------------------------------------------------------


def _refused(machine: ProposalMachine, event: Event, error: type[Exception]) -> str:
    before = machine.snapshot
    with pytest.raises(error) as caught:
        machine.handle(event)
    assert machine.snapshot == before
    return str(caught.value)


@pytest.mark.parametrize("who", [BOT, OTHER_BOT, R1])
def test_agents_and_runners_never_approve_or_deny(who: Principal) -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    assert who.name in _refused(machine, Approve(who, DIGEST, SOON), Forbidden)
    assert who.name in _refused(machine, Deny(who, DIGEST, "no", SOON), Forbidden)


def test_the_owner_of_the_proposing_agent_may_not_decide() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    message = _refused(machine, Approve(OWEN, DIGEST, SOON), Forbidden)
    assert "owen" in message
    _refused(machine, Deny(OWEN, DIGEST, "no", SOON), Forbidden)


def test_the_owner_of_another_agent_may_decide() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    run(machine, Approve(ALICE, DIGEST, SOON))  # alice owns OTHER_BOT, not BOT
    assert [v.by for v in machine.snapshot.votes] == [ALICE]


def test_the_same_human_may_not_vote_twice() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    run(machine, Approve(ALICE, DIGEST, SOON))
    assert "already voted" in _refused(machine, Approve(ALICE, DIGEST, SOON), IllegalTransition)
    _refused(machine, Deny(ALICE, DIGEST, "changed my mind", SOON), IllegalTransition)
    # the same person under another display name is still the same principal
    _refused(machine, Approve(replace(ALICE, name="Alice A."), DIGEST, SOON), IllegalTransition)


def test_a_vote_for_another_digest_is_refused() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    other = replace(CONTENT, intent="restart payments twice").digest
    assert other in _refused(machine, Approve(ALICE, other, SOON), IllegalTransition)
    _refused(machine, Deny(ALICE, other, "no", SOON), IllegalTransition)


def test_an_approver_not_named_by_the_decision_is_refused() -> None:
    machine = machine_in(State.ASSESSED)
    named = ("carol", "team:dba")
    requirement = Requirement(count=1, from_=named, eligible=named)
    run(machine, Decide(Decision(Outcome.REQUIRE_APPROVAL, requirement=requirement), T0))
    message = _refused(machine, Approve(ALICE, DIGEST, SOON), Forbidden)
    assert "carol" in message and "team:dba" in message
    _refused(machine, Approve(BOB, DIGEST, SOON), Forbidden)
    run(machine, Approve(CAROL, DIGEST, SOON))
    assert machine.state is State.AUTHORIZED


@pytest.mark.parametrize("who", [R1, ALICE])
def test_only_agents_propose(who: Principal) -> None:
    machine = ProposalMachine()
    _refused(machine, Propose(who, replace(CONTENT, agent=who.id)), Forbidden)
    assert machine.state is None


def test_an_agent_proposes_only_in_its_own_name() -> None:
    _refused(ProposalMachine(), Propose(OTHER_BOT, CONTENT), Forbidden)


@pytest.mark.parametrize("who", [ALICE, BOT])
def test_only_runners_lease(who: Principal) -> None:
    _refused(machine_in(State.AUTHORIZED), Lease(who, TOKEN, SOON), Forbidden)


def test_a_second_lease_is_refused() -> None:
    machine = machine_in(State.EXECUTING)
    _refused(machine, Lease(R2, TOKEN + 1, SOON), IllegalTransition)
    assert machine.snapshot.leases_granted == 1


def test_a_lease_needs_authorization_even_in_a_forged_state() -> None:
    # A snapshot claiming "authorized" without allow or quorum must not lease (invariant 1).
    machine = machine_in(State.PENDING_APPROVAL)
    machine.snapshot = replace(machine.snapshot, state=State.AUTHORIZED)
    assert "no allow" in _refused(machine, Lease(R1, TOKEN, SOON), IllegalTransition)
    machine = machine_in(State.AUTHORIZED)
    machine.snapshot = replace(machine.snapshot, leases_granted=1)
    assert "already leased" in _refused(machine, Lease(R1, TOKEN, SOON), IllegalTransition)


def test_a_runner_that_does_not_hold_the_lease_may_not_report() -> None:
    machine = machine_in(State.EXECUTING)
    assert "runner-2" in _refused(machine, ReportExecution(R2, TOKEN, ok=True), Forbidden)
    machine = machine_in(State.VERIFYING)
    _refused(machine, ReportVerification(R2, TOKEN, ok=True), Forbidden)


def test_a_stale_fencing_token_is_refused() -> None:
    machine = machine_in(State.EXECUTING)
    message = _refused(machine, ReportExecution(R1, TOKEN - 1, ok=True), IllegalTransition)
    assert "stale fencing token" in message
    machine = machine_in(State.VERIFYING)
    _refused(machine, ReportVerification(R1, TOKEN + 1, ok=True), IllegalTransition)


@pytest.mark.parametrize("who", [R1, OTHER_BOT])
def test_runners_and_other_agents_may_not_cancel(who: Principal) -> None:
    _refused(machine_in(State.PENDING_APPROVAL), Cancel(who), Forbidden)


@pytest.mark.parametrize("who", [BOT, ALICE, OWEN])
def test_the_proposing_agent_or_any_human_may_cancel(who: Principal) -> None:
    machine = machine_in(State.AUTHORIZED)
    run(machine, Cancel(who, "stop"))
    assert (machine.state, machine.snapshot.reason) == (State.CANCELLED, "stop")


# ---- authority: roles, eligibility, separation, quorum, expiry, windows, escalation -----

PAT = Principal("h-pat", "pat", HUMAN, teams=("payments",), roles=(APPROVER,))
VIC = Principal("h-vic", "vic", HUMAN, teams=("payments",), roles=("viewer",))
ADA = Principal("h-ada", "ada", HUMAN, teams=("payments",), roles=("admin", "auditor"))
SAM = Principal("h-sam", "sam", HUMAN, teams=("leads",), roles=(APPROVER,))
CONTRACTOR = Principal("h-kim", "kim", HUMAN, teams=("contractors",), roles=(APPROVER,))
PAYMENTS = Requirement(count=2, from_=("owner-of:payments",), eligible=("team:payments",))


def pending(requirement: Requirement, obligations: Obligations | None = None) -> ProposalMachine:
    """A machine pending approval under ``requirement``, decided at T0."""
    machine = machine_in(State.ASSESSED)
    decision = Decision(
        Outcome.REQUIRE_APPROVAL,
        ("production",),
        requirement,
        obligations=obligations or Obligations(),
    )
    run(machine, Decide(decision, T0))
    assert machine.state is State.PENDING_APPROVAL
    return machine


@pytest.mark.parametrize("who", [VIC, ADA, replace(ALICE, roles=())])
def test_a_human_without_the_approver_role_may_not_decide(who: Principal) -> None:
    machine = pending(Requirement(count=1))
    assert "approver role" in _refused(machine, Approve(who, DIGEST, SOON), Forbidden)
    assert "approver role" in _refused(machine, Deny(who, DIGEST, "no", SOON), Forbidden)
    assert machine.snapshot.votes == ()


def test_an_ineligible_human_is_refused_and_not_counted() -> None:
    machine = pending(PAYMENTS)
    message = _refused(machine, Approve(CAROL, DIGEST, SOON), Forbidden)
    assert "owner-of:payments" in message
    _refused(machine, Deny(CAROL, DIGEST, "no", SOON), Forbidden)
    assert run(machine, Approve(ALICE, DIGEST, SOON))[-1].target is State.PENDING_APPROVAL
    assert [v.by for v in machine.snapshot.votes] == [ALICE]
    run(machine, Approve(PAT, DIGEST, SOON))
    assert machine.state is State.AUTHORIZED
    assert {v.by.id for v in machine.snapshot.approvals} == {ALICE.id, PAT.id}


def test_the_proposers_owner_is_refused_unless_the_decision_allows_it() -> None:
    machine = pending(Requirement(count=1))
    assert "owns bot" in _refused(machine, Approve(OWEN, DIGEST, SOON), Forbidden)
    machine = pending(Requirement(count=1, owner_may_approve=True))
    run(machine, Approve(OWEN, DIGEST, SOON))
    assert machine.state is State.AUTHORIZED
    # "proposer-owner" in distinct_from wins over owner_may_approve
    strict = Requirement(count=1, owner_may_approve=True, distinct_from=("proposer-owner",))
    _refused(pending(strict), Approve(OWEN, DIGEST, SOON), Forbidden)


def test_distinct_from_a_group_refuses_its_members() -> None:
    machine = pending(Requirement(count=1, distinct_from=("group:contractors",)))
    message = _refused(machine, Approve(CONTRACTOR, DIGEST, SOON), Forbidden)
    assert "group:contractors" in message
    run(machine, Approve(ALICE, DIGEST, SOON))
    assert machine.state is State.AUTHORIZED


def test_a_quorum_of_two_needs_two_distinct_approvers() -> None:
    machine = pending(PAYMENTS)
    run(machine, Approve(ALICE, DIGEST, SOON, reason="looked at the diff"))
    _refused(machine, Approve(ALICE, DIGEST, SOON), IllegalTransition)
    _refused(machine, Approve(replace(ALICE, name="alice-2"), DIGEST, SOON), IllegalTransition)
    assert not machine.is_authorized()
    assert not machine.may_lease(SOON)
    run(machine, Approve(PAT, DIGEST, SOON + timedelta(minutes=1)))
    assert machine.is_authorized() and machine.may_lease(SOON)
    first, second = machine.snapshot.votes
    assert (first.by, first.approve, first.digest, first.reason, first.at) == (
        ALICE,
        True,
        DIGEST,
        "looked at the diff",
        SOON,
    )
    assert (second.by, second.at) == (PAT, SOON + timedelta(minutes=1))


def test_a_vote_bound_to_an_older_digest_is_refused_and_never_counts() -> None:
    machine = pending(Requirement(count=1))
    older = replace(CONTENT, parameters={"replicas": 1}).digest
    assert older != DIGEST
    assert older in _refused(machine, Approve(ALICE, older, SOON), IllegalTransition)
    assert not machine.is_authorized()
    run(machine, Approve(BOB, DIGEST, SOON))
    assert [v.digest for v in machine.snapshot.votes] == [DIGEST]


def test_approving_at_or_after_the_deadline_raises_expired() -> None:
    machine = pending(Requirement(count=1, expires_in=3600))
    deadline = T0 + timedelta(hours=1)
    assert machine.snapshot.deadline == deadline
    assert not machine.snapshot.expired(deadline - timedelta(seconds=1))
    assert machine.snapshot.expired(deadline)
    for late in (deadline, deadline + timedelta(days=3)):
        with pytest.raises(Expired) as caught:
            machine.handle(Approve(ALICE, DIGEST, late))
        assert isinstance(caught.value, IllegalTransition)
        assert "2026-11-26T10:00:00Z" in str(caught.value)
        _refused(machine, Deny(ALICE, DIGEST, "too late", late), Expired)
    assert machine.snapshot.votes == ()
    run(machine, Approve(ALICE, DIGEST, deadline - timedelta(seconds=1)))
    assert machine.state is State.AUTHORIZED


def test_the_default_window_is_a_day() -> None:
    machine = pending(Requirement(count=1))
    assert machine.snapshot.deadline == T0 + timedelta(hours=24)


def test_a_lease_after_the_deadline_is_refused() -> None:
    machine = pending(Requirement(count=1, expires_in=3600))
    deadline = T0 + timedelta(hours=1)
    run(machine, Approve(ALICE, DIGEST, SOON))
    assert machine.may_lease(deadline - timedelta(seconds=1))
    assert not machine.may_lease(deadline)
    assert machine.snapshot.expired(deadline)
    _refused(machine, Lease(R1, TOKEN, deadline), Expired)
    _refused(machine, Lease(R1, TOKEN, deadline + timedelta(hours=5)), Expired)
    run(machine, Lease(R1, TOKEN, deadline - timedelta(seconds=1)))
    assert machine.state is State.EXECUTING
    assert not machine.snapshot.expired(deadline)  # it runs; expiry no longer applies


def test_an_allow_has_no_deadline() -> None:
    machine = machine_in(State.AUTHORIZED)
    assert machine.snapshot.deadline is None and machine.snapshot.escalate_at is None
    later = T0 + timedelta(days=30)
    assert machine.may_lease(later)
    run(machine, Lease(R1, TOKEN, later))
    assert machine.state is State.EXECUTING


def test_may_lease_follows_the_change_window() -> None:
    office = ChangeWindow(
        days=("mon", "tue", "wed", "thu", "fri"),
        start=time(9),
        end=time(17),
        timezone="Europe/Berlin",
    )
    machine = machine_in(State.ASSESSED)
    decision = Decision(Outcome.ALLOW, ("ok",), obligations=Obligations(change_window=office))
    run(machine, Decide(decision, T0))
    saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert not machine.may_lease(saturday)
    assert "change window" in _refused(machine, Lease(R1, TOKEN, saturday), IllegalTransition)
    assert not machine.may_lease(datetime(2026, 11, 26, 16, 30, tzinfo=UTC))  # 17:30 Berlin
    monday = office.next_opening(saturday)
    assert monday == datetime(2026, 11, 30, 8, tzinfo=UTC)  # 09:00 Berlin
    assert machine.may_lease(T0) and machine.may_lease(monday)
    run(machine, Lease(R1, TOKEN, monday))
    assert not machine.may_lease(monday)  # leased once: no second lease


def test_may_lease_is_false_before_authorization() -> None:
    machine = pending(Requirement(count=1))
    assert not machine.may_lease(SOON)
    machine.snapshot = replace(machine.snapshot, state=State.AUTHORIZED)  # forged
    assert not machine.may_lease(SOON)


def test_escalation_adds_the_next_group_after_its_delay() -> None:
    leads = Escalation(after=1800, to=("group:leads",), eligible=("group:leads",))
    requirement = Requirement(
        count=1, from_=("team:payments",), eligible=("team:payments",), escalation=leads
    )
    machine = pending(requirement)
    assert machine.snapshot.escalate_at == T0 + timedelta(minutes=30)
    assert "team:payments" in _refused(machine, Approve(SAM, DIGEST, SOON), Forbidden)
    early = Escalate(T0 + timedelta(minutes=29))
    assert "escalates at 2026-11-26T09:30:00Z" in _refused(machine, early, IllegalTransition)
    transitions = machine.handle(Escalate(T0 + timedelta(minutes=30)))
    assert [(t.source, t.target, t.stage) for t in transitions] == [
        (State.PENDING_APPROVAL, State.PENDING_APPROVAL, Stage.APPROVAL)
    ]
    assert machine.snapshot.escalated and machine.snapshot.escalate_at is None
    again = Escalate(T0 + timedelta(hours=2))
    assert "no escalation left" in _refused(machine, again, IllegalTransition)
    assert not requirement.admits(SAM) and requirement.admits(SAM, escalated=True)
    run(machine, Approve(SAM, DIGEST, T0 + timedelta(minutes=31)))
    assert machine.state is State.AUTHORIZED


def test_a_decision_without_escalation_does_not_escalate() -> None:
    machine = pending(Requirement(count=1))
    assert machine.snapshot.escalate_at is None
    message = _refused(machine, Escalate(T0 + timedelta(days=2)), IllegalTransition)
    assert "no escalation" in message


def test_two_eligible_denials_end_it_when_the_decision_says_two() -> None:
    machine = pending(replace(PAYMENTS, denials=2))
    _refused(machine, Deny(CAROL, DIGEST, "not mine", SOON), Forbidden)
    assert run(machine, Deny(ALICE, DIGEST, "risky", SOON))[-1].target is State.PENDING_APPROVAL
    assert len(machine.snapshot.denials) == 1
    run(machine, Deny(PAT, DIGEST, "during the freeze", SOON))
    assert machine.state is State.DENIED
    assert machine.snapshot.reason == "during the freeze"
    assert [v.by for v in machine.snapshot.denials] == [ALICE, PAT]


def test_one_eligible_denial_ends_it_by_default() -> None:
    machine = pending(PAYMENTS)
    assert machine.snapshot.decision is not None
    assert machine.snapshot.decision.requirement.denials == 1
    run(machine, Deny(PAT, DIGEST, "risky", SOON))
    assert (machine.state, machine.snapshot.reason) == (State.DENIED, "risky")


@pytest.mark.parametrize(
    ("requirement", "problem"),
    [
        (Requirement(count=1, from_=("owner-of:ledger",)), "names nobody"),
        (Requirement(count=1, expires_in=0), "must be positive"),
        (Requirement(count=1, denials=0), "must be positive"),
    ],
)
def test_a_requirement_nobody_can_meet_is_refused(requirement: Requirement, problem: str) -> None:
    machine = machine_in(State.ASSESSED)
    decision = Decision(Outcome.REQUIRE_APPROVAL, ("x",), requirement)
    assert problem in _refused(machine, Decide(decision, T0), IllegalTransition)
