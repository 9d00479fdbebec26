"""Evaluating one bundle from many threads at once gives each caller its own right answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from placet.domain.lifecycle import Outcome
from placet.policy import PolicyBundle, default_bundle, sample_input
from tests.policy.helpers import assessed, decision_rule, library_with

THREADS = 8
ROUNDS = 150

# (kind, environment, assessment changes, outcome, reasons): every rule of the default
# bundle, so a thread handed another thread's input would give a wrong answer.
CASES: list[tuple[str, str, dict[str, Any], Outcome, int]] = [
    ("restart", "staging", {}, Outcome.ALLOW, 1),
    ("deploy", "production", {}, Outcome.REQUIRE_APPROVAL, 1),
    ("restart", "staging", {"unknown": ["service:ghost"]}, Outcome.REQUIRE_APPROVAL, 1),
    ("patch", "qa", {"revenue_path": True}, Outcome.REQUIRE_APPROVAL, 1),
    ("patch", "qa", {"data_classes": ["pci", "pii"]}, Outcome.REQUIRE_APPROVAL, 2),
    ("restart", "staging", {"count": 25}, Outcome.ALLOW, 1),
    ("restart", "staging", {"count": 26}, Outcome.REQUIRE_APPROVAL, 1),
    (
        "deploy",
        "production",
        {"unknown": ["a", "b"], "revenue_path": True, "data_classes": ["phi"], "count": 99},
        Outcome.REQUIRE_APPROVAL,
        6,
    ),
    ("drop_database", "staging", {}, Outcome.DENY, 1),
    ("purge_data", "production", {"revenue_path": True, "count": 99}, Outcome.DENY, 1),
]
DOCUMENTS = [assessed(kind, environment, **changes) for kind, environment, changes, _, _ in CASES]
EXPECTED = [(outcome, reasons) for _, _, _, outcome, reasons in CASES]


T = TypeVar("T")


def run_together(evaluate: Callable[[int, int], T]) -> list[T]:
    """Run ``evaluate(thread, round)`` from THREADS threads released at the same moment."""
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> list[T]:
        barrier.wait()
        return [evaluate(index, round_) for round_ in range(ROUNDS)]

    with ThreadPoolExecutor(THREADS) as pool:
        return [result for per_thread in pool.map(worker, range(THREADS)) for result in per_thread]


Verdict = tuple[Outcome, tuple[str, ...]]


def _answers_alone() -> list[Verdict]:
    """Each case decided once, on one thread, by the default rules with remembering off."""
    bundle = PolicyBundle.from_files(
        library_with({"id.rego": "package placet\n\nid := input.proposal.id\n"}),
        name="alone",
    )
    assert not bundle.remembers_decisions
    answers = [bundle.evaluate(document) for document in DOCUMENTS]
    assert [(d.outcome, len(d.reasons)) for d in answers] == EXPECTED
    return [(d.outcome, d.reasons) for d in answers]


def test_the_default_bundle_from_many_threads() -> None:
    # A fresh copy, so the threads race to fill an empty memo of remembered decisions.
    bundle = PolicyBundle.from_files(library_with({}), name="default")
    assert bundle.digest == default_bundle().digest
    assert bundle.remembers_decisions
    alone = _answers_alone()

    def evaluate(index: int, round_: int) -> tuple[Verdict, Verdict]:
        case = (index + round_) % len(CASES)
        decision = bundle.evaluate(DOCUMENTS[case])
        return (decision.outcome, decision.reasons), alone[case]

    pairs = run_together(evaluate)
    assert len(pairs) == THREADS * ROUNDS
    assert [got for got, want in pairs if got != want] == []


def test_the_default_rules_evaluated_afresh_from_many_threads() -> None:
    # Reading the proposal id turns remembering off, so every call reaches the engine.
    bundle = PolicyBundle.from_files(
        library_with({"id.rego": "package placet\n\nproposal_id := input.proposal.id\n"}),
        name="fresh",
    )
    assert not bundle.remembers_decisions
    alone = _answers_alone()

    def evaluate(index: int, round_: int) -> tuple[Verdict, Verdict]:
        case = (index + round_) % len(CASES)
        decision = bundle.evaluate(DOCUMENTS[case])
        return (decision.outcome, decision.reasons), alone[case]

    pairs = run_together(evaluate)
    assert len(pairs) == THREADS * ROUNDS
    assert [got for got, want in pairs if got != want] == []
    assert 1 <= bundle.sessions <= THREADS + 1


def test_no_answer_leaks_between_threads() -> None:
    # Each document carries its own intent; the policy echoes it. A shared interpreter
    # would hand one thread another thread's input.
    bundle = PolicyBundle.from_files(
        {"echo.rego": decision_rule('{"outcome": "allow", "reasons": [input.proposal.intent]}')},
        name="echo",
    )

    def evaluate(index: int, round_: int) -> tuple[str, str]:
        document = sample_input()
        intent = f"thread {index} round {round_}"
        document["proposal"]["intent"] = intent
        return bundle.evaluate(document).reasons[0], intent

    pairs = run_together(evaluate)
    assert len(pairs) == THREADS * ROUNDS
    mismatches = [(got, want) for got, want in pairs if got != want]
    assert mismatches == []
