"""Requeues in a record: a second capsule only after a requeue statement, only for an
idempotent kind, and at most as many requeues as the decision's ``retries``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from placet.domain.lifecycle import Stage
from placet.domain.proposal import ProposalContent
from placet.evidence.verify import VerificationError, verify_bundle
from tests.domain.retry_kind import RETRIABLE, declare

from .records import Ledger, Run, content, moves


def retriable(kind: str = RETRIABLE) -> ProposalContent:
    declare()
    return replace(content("refresh the cache"), kind=kind, parameters={})


class RetryRun(Run):
    """A run whose decision may grant retries and whose lost leases are requeued."""

    leases = 0

    def decide_retries(self, retries: int | None) -> None:
        predicate: dict[str, Any] = {
            "outcome": "allow",
            "reasons": ["policy says allow"],
            "approvals": {"min_approvals": 0, "eligible": []},
            "policy": {"bundle_digest": "b" * 64, "name": "default"},
            "proposal_digest": self.digest,
            "transitions": moves(("assessed", "decided"), ("decided", "authorized")),
            "at": "2026-11-25T22:40:01.123Z",
        }
        if retries is not None:
            predicate["retries"] = retries
        self.say(Stage.DECISION, predicate)

    def lease_again(self) -> None:
        """A capsule; after the first, under a fresh lease id and fencing token."""
        self.leases += 1
        if self.leases == 1:
            self.lease()
            return
        self.capsule = {
            **self.capsule,
            "lease_id": f"lease-{self.leases}",
            "fencing_token": 7 + self.leases,
        }
        self.say(Stage.CAPSULE, self.capsule)

    def requeue(self, **change: Any) -> None:
        self.say(
            Stage.REQUEUE,
            {
                "reason": "runner lost; retrying (attempt 2 of 2)",
                "runner_id": "run-01",
                **self.lease_terms(),
                "attempt": 2,
                "attempts": 2,
                "proposal_digest": self.digest,
                "transitions": moves(("executing", "authorized")),
                "at": "2026-11-25T22:40:01.123Z",
                **change,
            },
        )


def play(proposal: ProposalContent, retries: int | None, *steps: str) -> dict[str, Any]:
    """Record propose/assess/decide then ``steps`` (method names); verify the bundle."""
    ledger = Ledger()
    run = RetryRun(ledger, "P-1", proposal)
    run.propose()
    run.assess()
    run.decide_retries(retries)
    for step in steps:
        if step.startswith("close:"):
            run.close(step.split(":", 1)[1])
        else:
            getattr(run, step)()
    report = verify_bundle(ledger.bundle("P-1"), ledger.control.public)
    return {"state": report.final_state, "stages": report.stages, "notes": report.notes}


def test_a_requeued_idempotent_action_runs_again_and_verifies() -> None:
    got = play(
        retriable(),
        1,
        "lease_again",
        "requeue",
        "lease_again",
        "execute",
        "verify",
        "close:succeeded",
    )
    assert got["state"] == "succeeded"
    assert got["stages"][3:] == (
        "capsule",
        "requeue",
        "capsule",
        "execution",
        "verification",
        "closure",
    )
    assert any("requeued for attempt 2" in note for note in got["notes"])


def test_a_requeue_after_a_good_execution_may_run_it_again() -> None:
    got = play(
        retriable(),
        2,
        "lease_again",
        "execute",
        "requeue",
        "lease_again",
        "requeue",
        "lease_again",
        "close:failed",
    )
    assert got["state"] == "failed"


@pytest.mark.parametrize(
    ("pattern", "proposal", "retries", "steps"),
    [
        # a second capsule without a requeue before it
        (
            "the capsule statement cannot come here",
            retriable(),
            1,
            ("lease_again", "lease_again", "close:failed"),
        ),
        # more requeues than the decision allows (retries absent: 0)
        ("allows 0 retries", retriable(), None, ("lease_again", "requeue", "close:failed")),
        (
            "allows 1 retries and 1 were already used",
            retriable(),
            1,
            ("lease_again", "requeue", "lease_again", "requeue", "close:failed"),
        ),
        # never for a kind that is not idempotent
        (
            "shell is not idempotent",
            content(),
            3,
            ("lease_again", "requeue", "lease_again", "close:failed"),
        ),
        # a requeue needs a capsule to requeue, and names its lease
        ("the requeue statement cannot come here", retriable(), 1, ("requeue", "close:failed")),
        # after a requeue the record continues with a capsule or a closure only
        (
            "the execution statement cannot come here",
            retriable(),
            1,
            ("lease_again", "requeue", "execute", "close:failed"),
        ),
        ("succeeded cannot close", retriable(), 1, ("lease_again", "requeue", "close:succeeded")),
    ],
)
def test_broken_requeues_are_named(
    pattern: str, proposal: ProposalContent, retries: int | None, steps: tuple[str, ...]
) -> None:
    with pytest.raises(VerificationError, match=pattern):
        play(proposal, retries, *steps)


def test_a_requeue_must_name_the_lost_lease() -> None:
    ledger = Ledger()
    run = RetryRun(ledger, "P-1", retriable())
    run.propose()
    run.assess()
    run.decide_retries(1)
    run.lease_again()
    run.requeue(lease_id="lease-9")
    run.close("failed")
    with pytest.raises(VerificationError, match=r"predicate.lease_id: does not match the capsule"):
        verify_bundle(ledger.bundle("P-1"), ledger.control.public)


def test_a_plugin_kind_unknown_offline_is_accepted_with_a_note() -> None:
    got = play(
        retriable("not-installed-here"),
        1,
        "lease_again",
        "requeue",
        "lease_again",
        "execute",
        "verify",
        "close:succeeded",
    )
    assert got["state"] == "succeeded"
    assert any("cannot be checked offline" in note for note in got["notes"])
