"""Fault injection: a policy that errors, runs too long or answers malformed fails closed."""

from __future__ import annotations

import threading
import time

import pytest

from placet.domain.authority import Outcome
from placet.policy import PolicyBundle, PolicyError, sample_input
from placet.policy.engine import MAX_OVERDUE
from tests.policy.helpers import decision_rule

# Spins only when the proposal asks it to, so loading (which evaluates a sample) is quick.
SPIN = decision_rule(
    '{"outcome": "allow", "reasons": [sprintf("%d", [spin])]}',
    "spin := count([x | some x in numbers.range(1, input.proposal.parameters.n); "
    "x % 7 == 0]) if input.proposal.parameters.n\nelse := 0\n",
)


def spinning(n: int) -> dict[str, object]:
    document = sample_input()
    document["proposal"]["parameters"]["n"] = n
    return document


def bundle_alone_reasons(n: int) -> tuple[str, ...]:
    """What the spinning policy says for ``n`` with no time limit, on a fresh bundle."""
    alone = PolicyBundle.from_files({"p.rego": SPIN}, name="alone", timeout=None)
    reasons = alone.evaluate(spinning(n)).reasons
    assert reasons != ("0",)
    return reasons


def test_a_policy_that_runs_too_long_times_out_and_fails_closed() -> None:
    bundle = PolicyBundle.from_files({"p.rego": SPIN}, name="spin", timeout=0.05)
    assert bundle.timeout == 0.05
    started = time.perf_counter()
    with pytest.raises(PolicyError, match=r"timed out after 0\.05s"):
        bundle.evaluate(spinning(200_000))
    assert time.perf_counter() - started < 2.0  # the caller stopped waiting
    # The busy session is set aside; another caller gets a fresh one and a right answer.
    assert bundle.evaluate(spinning(70)).reasons == bundle_alone_reasons(70)
    assert bundle.sessions >= 2


def test_overdue_evaluations_are_bounded() -> None:
    bundle = PolicyBundle.from_files({"p.rego": SPIN}, name="spin", timeout=0.02)
    for _ in range(MAX_OVERDUE):
        with pytest.raises(PolicyError, match="timed out"):
            bundle.evaluate(spinning(100_000))
    with pytest.raises(PolicyError, match="still running past their time limit"):
        bundle.evaluate(spinning(70))


def test_a_session_that_finishes_late_is_used_again() -> None:
    bundle = PolicyBundle.from_files({"p.rego": SPIN}, name="spin", timeout=0.5)
    with pytest.raises(PolicyError, match="timed out"):
        bundle.evaluate(spinning(150_000))
    engine = bundle._engine
    deadline = time.monotonic() + 60
    pause = threading.Event()  # never set: a bounded wait between looks at the condition
    while engine.overdue and time.monotonic() < deadline:
        pause.wait(0.01)
    assert engine.overdue == 0
    sessions = bundle.sessions
    assert bundle.evaluate(spinning(70)).reasons == bundle_alone_reasons(70)
    assert bundle.sessions == sessions


def test_without_a_timeout_evaluation_runs_on_the_callers_thread() -> None:
    bundle = PolicyBundle.from_files({"p.rego": SPIN}, name="spin", timeout=None)
    assert bundle.evaluate(spinning(14)).outcome is Outcome.ALLOW


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(PolicyError, match="timeout must be positive"):
        PolicyBundle.from_files({"p.rego": SPIN}, name="spin", timeout=0)


def test_a_runtime_error_fails_closed_with_the_engines_reason() -> None:
    # Two values for one complete rule is an error only when both bodies hold.
    source = decision_rule(
        '{"outcome": "allow", "reasons": [sprintf("%v", [x])]}',
        "x := 1 if input.proposal.parameters.conflict\n"
        "x := 2 if input.proposal.parameters.conflict\n",
    )
    bundle = PolicyBundle.from_files({"p.rego": source}, name="conflict")
    document = sample_input()
    document["proposal"]["parameters"]["conflict"] = True
    with pytest.raises(PolicyError, match=r"evaluation failed: .*multiple outputs"):
        bundle.evaluate(document)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"outcome": "allow", "reasons": "x"}', "reasons: must be an array"),
        ('{"outcome": "perhaps", "reasons": ["x"]}', "outcome: must be one of"),
        ('{"outcome": "deny"}', "reasons: is required"),
        (
            '{"outcome": "require_approval", "reasons": ["x"], "expires_in": "soon"}',
            "expires_in: 'soon' is not a duration",
        ),
        (
            '{"outcome": "require_approval", "reasons": ["x"], "from": ["owner:db"]}',
            r"from\[0\]: 'owner:db': selectors are",
        ),
        (
            '{"outcome": "allow", "reasons": ["x"], "obligations": {"change_window": '
            '{"start": "25:00", "end": "18:00"}}}',
            r"change_window\.start: must be a time of day",
        ),
    ],
)
def test_malformed_decisions_from_a_real_bundle_fail_closed(body: str, problem: str) -> None:
    bundle = PolicyBundle.from_files({"p.rego": decision_rule(body)}, name="bad")
    with pytest.raises(PolicyError, match=problem):
        bundle.evaluate(sample_input())
