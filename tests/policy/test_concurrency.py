"""Evaluating one bundle from many threads at once gives each caller its own right answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from placet.domain.lifecycle import Outcome
from placet.policy import PolicyBundle, default_bundle, sample_input
from placet.policy.bundle import default_bundle_files
from tests.policy.helpers import decision_rule

THREADS = 8
ROUNDS = 150

CASES = [
    ("restart", "staging", Outcome.ALLOW),
    ("deploy", "production", Outcome.REQUIRE_APPROVAL),
    ("drop_database", "staging", Outcome.DENY),
    ("purge_data", "production", Outcome.DENY),
]


T = TypeVar("T")


def run_together(evaluate: Callable[[int, int], T]) -> list[T]:
    """Run ``evaluate(thread, round)`` from THREADS threads released at the same moment."""
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> list[T]:
        barrier.wait()
        return [evaluate(index, round_) for round_ in range(ROUNDS)]

    with ThreadPoolExecutor(THREADS) as pool:
        return [result for per_thread in pool.map(worker, range(THREADS)) for result in per_thread]


def test_default_bundle_from_many_threads() -> None:
    bundle = default_bundle()
    assert bundle.remembers_decisions
    documents = [sample_input(kind=k, environment=e) for k, e, _ in CASES]

    def evaluate(index: int, round_: int) -> tuple[Outcome, Outcome]:
        case = (index + round_) % len(CASES)
        return bundle.evaluate(documents[case]).outcome, CASES[case][2]

    pairs = run_together(evaluate)
    assert len(pairs) == THREADS * ROUNDS
    assert all(got == want for got, want in pairs)


def test_the_default_rules_evaluated_afresh_from_many_threads() -> None:
    # Reading the proposal id turns remembering off, so every call reaches the engine.
    source = default_bundle_files().joinpath("placet.rego").read_text()
    bundle = PolicyBundle.from_files(
        {"placet.rego": source, "id.rego": "package placet\n\nproposal_id := input.proposal.id\n"},
        name="fresh",
    )
    assert not bundle.remembers_decisions
    documents = [sample_input(kind=k, environment=e) for k, e, _ in CASES]

    def evaluate(index: int, round_: int) -> tuple[Outcome, Outcome]:
        case = (index + round_) % len(CASES)
        return bundle.evaluate(documents[case]).outcome, CASES[case][2]

    pairs = run_together(evaluate)
    assert len(pairs) == THREADS * ROUNDS
    assert all(got == want for got, want in pairs)
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
