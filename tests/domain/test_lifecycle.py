"""The lifecycle table, its happy paths, and who may do what (Forbidden)."""

from __future__ import annotations

from dataclasses import replace

import pytest

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
    Event,
    Expire,
    Fail,
    Lease,
    Outcome,
    ProposalMachine,
    Propose,
    ReportExecution,
    ReportVerification,
    Requirement,
    Stage,
    State,
    Transition,
    Validate,
)
from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import ProposalContent
from tests.domain.lifecycle_model import CLOSED, DESIGNED

HUMAN, AGENT, RUNNER = PrincipalKind.HUMAN, PrincipalKind.AGENT, PrincipalKind.RUNNER
ALICE = Principal("h-alice", "alice", HUMAN, teams=("payments",))
BOB = Principal("h-bob", "bob", HUMAN, roles=("sre",))
CAROL = Principal("h-carol", "carol", HUMAN)
OWEN = Principal("h-owen", "owen", HUMAN)  # owns BOT
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
QUORUM_2 = Decision(Outcome.REQUIRE_APPROVAL, ("production",), Requirement(count=2))
TOKEN = 7


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
        State.PENDING_APPROVAL: [Propose(BOT, CONTENT), Assess(), Decide(QUORUM_2)],
        State.AUTHORIZED: [Propose(BOT, CONTENT), Assess(), Decide(ALLOW)],
        State.EXECUTING: [Propose(BOT, CONTENT), Assess(), Decide(ALLOW), Lease(R1, TOKEN)],
        State.VERIFYING: [
            Propose(BOT, CONTENT),
            Assess(),
            Decide(ALLOW),
            Lease(R1, TOKEN),
            ReportExecution(R1, TOKEN, ok=True),
        ],
        State.SUCCEEDED: [
            Propose(BOT, CONTENT),
            Assess(),
            Decide(ALLOW),
            Lease(R1, TOKEN),
            ReportExecution(R1, TOKEN, ok=True),
            ReportVerification(R1, TOKEN, ok=True),
        ],
        State.FAILED: [Propose(BOT, CONTENT), Fail("graph unavailable")],
        State.DENIED: [Propose(BOT, CONTENT), Assess(), Decide(DENY)],
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


def valid_event(name: str) -> Event:
    """An event of type ``name`` whose data is acceptable wherever the table allows it."""
    events: dict[str, Event] = {
        "propose": Propose(BOT, CONTENT),
        "assess": Assess(),
        "validate": Validate(),
        "decide": Decide(ALLOW),
        "approve": Approve(ALICE, DIGEST),
        "deny": Deny(ALICE, DIGEST, "not during the freeze"),
        "cancel": Cancel(CAROL, "no longer needed"),
        "lease": Lease(R1, TOKEN),
        "report_execution": ReportExecution(R1, TOKEN, ok=True),
        "report_verification": ReportVerification(R1, TOKEN, ok=True),
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
    machine = machine_in(state)
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
        Decide(ALLOW),
        Lease(R1, TOKEN),
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
    first = machine.handle(Approve(ALICE, DIGEST))
    assert [(t.source, t.target) for t in first] == [
        (State.PENDING_APPROVAL, State.PENDING_APPROVAL)
    ]
    assert first[0].stage is Stage.APPROVAL
    assert not machine.is_authorized()
    with pytest.raises(IllegalTransition):
        machine.handle(Lease(R1, TOKEN))
    second = machine.handle(Approve(BOB, DIGEST))
    assert [(t.source, t.target) for t in second] == [(State.PENDING_APPROVAL, State.AUTHORIZED)]
    assert machine.is_authorized()
    assert [v.by for v in machine.snapshot.approvals] == [ALICE, BOB]
    assert all(v.digest == DIGEST for v in machine.snapshot.votes)
    run(
        machine,
        Lease(R2, TOKEN),
        ReportExecution(R2, TOKEN, ok=True),
        ReportVerification(R2, TOKEN, ok=True),
    )
    assert machine.state is State.SUCCEEDED


def test_quorum_from_named_approvers_teams_and_roles() -> None:
    requirement = Requirement(count=2, any_of=("carol", "team:payments", "role:sre"))
    for pair in [(ALICE, BOB), (CAROL, ALICE), (BOB, CAROL)]:
        machine = machine_in(State.ASSESSED)
        run(machine, Decide(Decision(Outcome.REQUIRE_APPROVAL, requirement=requirement)))
        run(machine, *(Approve(h, DIGEST) for h in pair))
        assert machine.state is State.AUTHORIZED


def test_deny_by_policy() -> None:
    machine = machine_in(State.ASSESSED)
    transitions = machine.handle(Decide(DENY))
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
            machine.handle(Deny(ALICE, DIGEST, reason))
        assert machine.state is State.PENDING_APPROVAL
        assert machine.snapshot.votes == ()
    transitions = machine.handle(Deny(ALICE, DIGEST, "not during the freeze"))
    assert [(t.source, t.target, t.stage) for t in transitions] == [
        (State.PENDING_APPROVAL, State.DENIED, Stage.APPROVAL)
    ]
    assert machine.snapshot.reason == "not during the freeze"
    (vote,) = machine.snapshot.votes
    assert (vote.by, vote.approve, vote.digest) == (ALICE, False, DIGEST)


def test_a_deny_after_one_approval_still_denies() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    run(machine, Approve(ALICE, DIGEST), Deny(BOB, DIGEST, "no"))
    assert machine.state is State.DENIED
    assert not machine.is_authorized()


@pytest.mark.parametrize("decision", [ALLOW, DENY, QUORUM_2])
@pytest.mark.parametrize("via_validation", [False, True])
def test_decide_produces_two_transitions(decision: Decision, via_validation: bool) -> None:
    machine = machine_in(State.VALIDATING if via_validation else State.ASSESSED)
    source = machine.state
    transitions = machine.handle(Decide(decision))
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
        machine.handle(Decide(Decision(Outcome.REQUIRE_APPROVAL, requirement=Requirement(0))))
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
    assert who.name in _refused(machine, Approve(who, DIGEST), Forbidden)
    assert who.name in _refused(machine, Deny(who, DIGEST, "no"), Forbidden)


def test_the_owner_of_the_proposing_agent_may_not_decide() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    message = _refused(machine, Approve(OWEN, DIGEST), Forbidden)
    assert "owen" in message
    _refused(machine, Deny(OWEN, DIGEST, "no"), Forbidden)


def test_the_owner_of_another_agent_may_decide() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    run(machine, Approve(ALICE, DIGEST))  # alice owns OTHER_BOT, not BOT
    assert [v.by for v in machine.snapshot.votes] == [ALICE]


def test_the_same_human_may_not_vote_twice() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    run(machine, Approve(ALICE, DIGEST))
    assert "already voted" in _refused(machine, Approve(ALICE, DIGEST), IllegalTransition)
    _refused(machine, Deny(ALICE, DIGEST, "changed my mind"), IllegalTransition)
    # the same person under another display name is still the same principal
    _refused(machine, Approve(replace(ALICE, name="Alice A."), DIGEST), IllegalTransition)


def test_a_vote_for_another_digest_is_refused() -> None:
    machine = machine_in(State.PENDING_APPROVAL)
    other = replace(CONTENT, intent="restart payments twice").digest
    assert other in _refused(machine, Approve(ALICE, other), IllegalTransition)
    _refused(machine, Deny(ALICE, other, "no"), IllegalTransition)


def test_an_approver_not_in_any_of_is_refused() -> None:
    machine = machine_in(State.ASSESSED)
    requirement = Requirement(count=1, any_of=("carol", "team:dba"))
    run(machine, Decide(Decision(Outcome.REQUIRE_APPROVAL, requirement=requirement)))
    message = _refused(machine, Approve(ALICE, DIGEST), Forbidden)
    assert "carol" in message and "team:dba" in message
    _refused(machine, Approve(BOB, DIGEST), Forbidden)
    run(machine, Approve(CAROL, DIGEST))
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
    _refused(machine_in(State.AUTHORIZED), Lease(who, TOKEN), Forbidden)


def test_a_second_lease_is_refused() -> None:
    machine = machine_in(State.EXECUTING)
    _refused(machine, Lease(R2, TOKEN + 1), IllegalTransition)
    assert machine.snapshot.leases_granted == 1


def test_a_lease_needs_authorization_even_in_a_forged_state() -> None:
    # A snapshot claiming "authorized" without allow or quorum must not lease (invariant 1).
    machine = machine_in(State.PENDING_APPROVAL)
    machine.snapshot = replace(machine.snapshot, state=State.AUTHORIZED)
    assert "no allow" in _refused(machine, Lease(R1, TOKEN), IllegalTransition)
    machine = machine_in(State.AUTHORIZED)
    machine.snapshot = replace(machine.snapshot, leases_granted=1)
    assert "already leased" in _refused(machine, Lease(R1, TOKEN), IllegalTransition)


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
