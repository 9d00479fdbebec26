"""Retries after a lost runner: only idempotent kinds, at most ``decision.retries`` times."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.domain.authority import MAX_RETRIES
from placet.domain.errors import Forbidden, IllegalTransition
from placet.domain.lifecycle import (
    Assess,
    Decide,
    Fail,
    Lease,
    ProposalMachine,
    Propose,
    ReportExecution,
    ReportVerification,
    Requeue,
    Stage,
    State,
    is_idempotent,
)
from tests.domain.retry_kind import RETRIABLE
from tests.domain.test_lifecycle import ALLOW, BOT, CONTENT, R1, R2, SOON, T0, TOKEN, run

LOST = "runner lost"


def state(machine: ProposalMachine) -> State | None:
    """The machine's state, read afresh (each event moves it)."""
    return machine.state


def decided(kind: str, retries: int) -> ProposalMachine:
    """An authorized proposal of ``kind`` whose decision allows ``retries`` extra attempts."""
    machine = ProposalMachine()
    content = replace(CONTENT, kind=kind)
    run(machine, Propose(BOT, content), Assess(), Decide(replace(ALLOW, retries=retries), T0))
    assert state(machine) is State.AUTHORIZED
    return machine


def test_the_declared_kinds_say_whether_they_are_idempotent() -> None:
    assert is_idempotent(RETRIABLE)
    assert not is_idempotent("shell")
    assert not is_idempotent("restart")
    assert not is_idempotent("no-such-kind")  # unknown: never retried


def test_an_idempotent_action_is_requeued_and_leased_again() -> None:
    machine = decided(RETRIABLE, retries=1)
    run(machine, Lease(R1, TOKEN, SOON))
    assert machine.may_run_again()
    assert machine.attempt() == (2, 2)
    transitions = machine.handle(Requeue(f"{LOST}; retrying (attempt 2 of 2)"))
    assert [(t.source, t.target, t.stage, t.event) for t in transitions] == [
        (State.EXECUTING, State.AUTHORIZED, Stage.REQUEUE, "requeue")
    ]
    assert machine.may_lease(SOON)
    run(machine, Lease(R2, TOKEN + 1, SOON))
    assert state(machine) is State.EXECUTING
    assert machine.snapshot.leases_granted == 2
    assert machine.snapshot.lease is not None
    assert machine.snapshot.lease.runner_id == R2.id
    # the lost runner's lease is superseded: its late report is refused
    with pytest.raises(Forbidden):
        machine.handle(ReportExecution(R1, TOKEN, ok=True))
    run(machine, ReportExecution(R2, TOKEN + 1, ok=True), ReportVerification(R2, TOKEN + 1, True))
    assert state(machine) is State.SUCCEEDED


def test_the_retries_run_out() -> None:
    machine = decided(RETRIABLE, retries=1)
    run(machine, Lease(R1, TOKEN, SOON), Requeue(LOST), Lease(R2, TOKEN + 1, SOON))
    assert not machine.may_run_again()
    before = machine.snapshot
    with pytest.raises(IllegalTransition) as caught:
        machine.handle(Requeue(LOST))
    assert "allows 1 retries and none is left" in str(caught.value)
    assert machine.snapshot == before
    run(machine, Fail(f"{LOST}: lease expired"))
    assert state(machine) is State.FAILED


def test_a_verifying_proposal_may_be_requeued_too() -> None:
    machine = decided(RETRIABLE, retries=2)
    run(machine, Lease(R1, TOKEN, SOON), ReportExecution(R1, TOKEN, ok=True))
    assert state(machine) is State.VERIFYING
    run(machine, Requeue(LOST))
    assert state(machine) is State.AUTHORIZED
    with pytest.raises(IllegalTransition):
        machine.handle(ReportVerification(R1, TOKEN, ok=True))


@pytest.mark.parametrize("kind", ["shell", "restart", "git-patch"])
def test_a_non_idempotent_action_never_runs_twice(kind: str) -> None:
    machine = decided(kind, retries=MAX_RETRIES)
    run(machine, Lease(R1, TOKEN, SOON))
    assert not machine.may_run_again()
    with pytest.raises(IllegalTransition) as caught:
        machine.handle(Requeue(LOST))
    assert f"{kind} is not idempotent" in str(caught.value)
    # even a forged snapshot that claims "authorized" gets no second lease
    machine.snapshot = replace(machine.snapshot, state=State.AUTHORIZED)
    assert not machine.may_lease(SOON)
    with pytest.raises(IllegalTransition, match="already leased once"):
        machine.handle(Lease(R2, TOKEN + 1, SOON))


def test_no_retries_means_one_attempt() -> None:
    machine = decided(RETRIABLE, retries=0)
    run(machine, Lease(R1, TOKEN, SOON))
    with pytest.raises(IllegalTransition):
        machine.handle(Requeue(LOST))


@given(
    retries=st.integers(min_value=0, max_value=MAX_RETRIES),
    kind=st.sampled_from([RETRIABLE, "shell", "http", "deploy"]),
)
def test_attempts_are_bounded_by_the_decision_and_the_kind(retries: int, kind: str) -> None:
    """Lose the runner after every lease: the capsule runs retries + 1 times for an
    idempotent kind and exactly once for any other, then the proposal can only fail."""
    machine = decided(kind, retries)
    attempts = 0
    token = TOKEN
    while machine.may_lease(SOON):
        token += 1
        run(machine, Lease(R1 if attempts % 2 else R2, token, SOON))
        attempts += 1
        assert machine.attempt() == (attempts + 1, retries + 1)
        try:
            machine.handle(Requeue(LOST))
        except IllegalTransition:
            break
    assert state(machine) is State.EXECUTING
    assert attempts == machine.snapshot.leases_granted
    assert attempts == (retries + 1 if kind == RETRIABLE else 1)
    run(machine, Fail(LOST))
    assert state(machine) is State.FAILED
