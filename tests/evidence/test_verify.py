"""verify_bundle: real bundles verify; each broken rule fails with the entry and field named."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from placet.domain.lifecycle import Stage
from placet.domain.signing import SigningKey
from placet.evidence.bundle import CONTROL_PLANE, BundleKey
from placet.evidence.checkpoint import sign_checkpoint
from placet.evidence.verify import VerificationError, verify_bundle

from .records import AGENT, ALICE, BOB, ORIGIN, RUNS, Ledger, Run, content

CAROL = {"id": "hum-carol", "name": "carol", "kind": "human"}  # owns AGENT


def test_untouched_bundles_verify_with_and_without_the_trusted_key(
    recorded: tuple[Ledger, dict[str, Any]],
) -> None:
    ledger, bundle = recorded
    bundle = json.loads(json.dumps(bundle))  # exactly what a file holds
    trusted = verify_bundle(bundle, ledger.control.public)
    untrusted = verify_bundle(bundle)
    assert trusted.key_trusted and not untrusted.key_trusted
    assert "the trusted key" in trusted.summary()
    assert "taken from the bundle" in untrusted.summary()
    assert trusted.proposal_id == bundle["proposal_id"]
    assert trusted.control_plane_keyid == ledger.control.keyid
    assert trusted.checkpoint_size == ledger.log.size() and trusted.origin == ORIGIN
    assert list(trusted.leaf_indexes) == [e["leaf_index"] for e in bundle["entries"]]
    assert trusted.as_dict()["verified"] is True


def test_reports_say_what_each_run_established() -> None:
    reports = {}
    for name, run in RUNS.items():
        ledger = Ledger()
        reports[name] = verify_bundle(ledger.bundle(run(ledger)), ledger.control.public)
    assert reports["allowed"].final_state == "succeeded"
    assert reports["allowed"].stages == (
        "proposal",
        "assessment",
        "decision",
        "capsule",
        "execution",
        "verification",
        "closure",
    )
    assert reports["allowed"].approvers == ()
    assert reports["approved"].approvers == ("alice", "bob")
    assert len(reports["approved"].runner_keyids) == 1
    assert reports["denied"].final_state == "denied"
    assert reports["denied"].stages == ("proposal", "assessment", "decision", "closure")
    assert "final state      denied" in reports["denied"].summary()


def test_a_wrong_trusted_key_fails(recorded: tuple[Ledger, dict[str, Any]]) -> None:
    _, bundle = recorded
    stranger = SigningKey.generate().public
    with pytest.raises(VerificationError, match=r"^keys: .* is not the trusted key"):
        verify_bundle(bundle, stranger)


def test_a_bundle_signed_by_another_control_plane_fails_against_the_trusted_key() -> None:
    honest, forger = Ledger(), Ledger()
    proposal_id = RUNS["allowed"](forger)
    with pytest.raises(VerificationError, match="not the trusted key"):
        verify_bundle(forger.bundle(proposal_id), honest.control.public)


# ---- records that are signed and logged, but break the rules --------------------------


Step = Callable[[Run], object]


def record(*steps: Step) -> tuple[Ledger, dict[str, Any]]:
    """Play the steps as one proposal's run; return the ledger and the proposal's bundle."""
    ledger = Ledger()
    run = Run(ledger, "P-1", content())
    for step in steps:
        step(run)
    return ledger, ledger.bundle("P-1")


def fails(pattern: str, *steps: Step) -> str:
    ledger, bundle = record(*steps)
    with pytest.raises(VerificationError, match=pattern) as caught:
        verify_bundle(bundle, ledger.control.public)
    return str(caught.value)


def do(method: str, *args: Any, **kwargs: Any) -> Step:
    """A step calling ``Run.<method>(*args, **kwargs)``."""
    return lambda run: getattr(run, method)(*args, **kwargs)


def start(outcome: str = "require_approval", count: int = 1, any_of: Any = None) -> Step:
    """Propose, assess and decide; ``count`` approvals when the outcome requires them."""

    def step(run: Run) -> None:
        run.propose()
        run.assess()
        run.decide(outcome, count if outcome == "require_approval" else 0, any_of)

    return step


RUN_IT = (do("lease"), do("execute"), do("verify"), do("close", "succeeded"))


def test_a_failed_execution_and_a_cancellation_verify_with_their_final_state() -> None:
    failed = (start("allow"), do("lease"), do("execute", ok=False), do("close", "failed"))
    cancelled = (start(), do("close", "cancelled", "withdrawn"))
    for steps, state in ((failed, "failed"), (cancelled, "cancelled")):
        ledger, bundle = record(*steps)
        assert verify_bundle(bundle, ledger.control.public).final_state == state


BROKEN: list[tuple[str, tuple[Step, ...]]] = [
    # approvers
    (r"entries\[3\].predicate.approver: carol", (start(), do("vote", CAROL), *RUN_IT)),
    ("only humans", (start(), do("vote", {**AGENT, "kind": "agent"}), *RUN_IT)),
    ("made the proposal", (start(), do("vote", {**ALICE, "id": AGENT["id"]}), *RUN_IT)),
    ("already voted", (start(count=2), do("vote", ALICE), do("vote", ALICE), *RUN_IT)),
    (
        r"entries\[4\]: the capsule statement cannot come here",
        (start(count=2), do("vote", ALICE), *RUN_IT),
    ),
    ("alice is not among bob", (start(any_of=["bob"]), do("vote", ALICE), *RUN_IT)),
    (
        r"entries\[4\]: the capsule statement cannot come here",
        (start(), do("vote", ALICE, "deny", "no"), *RUN_IT),
    ),
    ("must be approve or deny", (start(), do("vote", ALICE, "maybe"), *RUN_IT)),
    # order and completeness
    ("incomplete", (start("allow"), do("lease"), do("execute"), do("verify"))),
    ("needs an earlier capsule", (start("allow"), do("execute"), do("close", "failed"))),
    (r"entries\[0\]: the assessment statement cannot", (do("assess"), do("propose"))),
    ("succeeded cannot close", (start("deny"), do("close", "succeeded"))),
    (
        "succeeded cannot close",
        (
            start("allow"),
            do("lease"),
            do("execute"),
            do("verify", passed=False),
            do("close", "succeeded"),
        ),
    ),
    (
        "succeeded cannot close",
        (start("allow"), do("lease"), do("execute"), do("close", "succeeded")),
    ),
    ("expired cannot close", (start("allow"), do("lease"), do("execute"), do("close", "expired"))),
    ("denied cannot close", (start("allow"), do("close", "denied"))),
    ("unknown state", (start("allow"), do("close", "finished"))),
    ("unknown outcome", (start("maybe"),)),
    ("at least 1", (start(count=0), do("close", "cancelled"))),
]


@pytest.mark.parametrize(("pattern", "steps"), BROKEN)
def test_broken_rules_are_named(pattern: str, steps: tuple[Step, ...]) -> None:
    fails(pattern, *steps)


def test_digests_must_agree_everywhere() -> None:
    def claim(digest: str) -> Step:
        def step(run: Run) -> None:
            run.digest = digest

        return step

    # the capsule and what follows claim another proposal digest
    fails(r"entries\[3\].statement.subject: digest 0000", start("allow"), claim("0" * 64), *RUN_IT)
    # the proposal's content is not what the digest covers
    fails(
        r"entries\[0\].predicate.proposal: does not hash",
        claim(content("something else").digest),
        start("deny"),
        do("close", "denied"),
    )

    def vote_for_another_digest(run: Run) -> None:
        predicate = {
            "vote": "approve",
            "approver": ALICE,
            "proposal_digest": "1" * 64,
            "reason": "",
            "transitions": [],
            "at": "2026-11-25T22:40:01.123Z",
        }
        run.say(Stage.APPROVAL, predicate)

    fails(
        r"entries\[3\].predicate.proposal_digest: 1111",
        start(),
        vote_for_another_digest,
        *RUN_IT,
    )


def test_runner_statements_need_the_runner_key_the_capsule_names() -> None:
    def by_control_plane(run: Run) -> None:
        run.execute(key=run.ledger.control)

    fails(
        r"entries\[4\]: signed by key .*, not by the runner key",
        start("allow"),
        do("lease"),
        by_control_plane,
        do("close", "failed"),
    )
    fails(
        "runner_keyid is not a runner key of the bundle",
        start("allow"),
        do("lease", runner_key=SigningKey.generate()),
        do("execute"),
        do("close", "failed"),
    )

    def other_lease(run: Run) -> None:
        run.capsule["lease_id"] = "lease-2"  # the runner reports under another lease

    fails(
        r"entries\[4\].predicate.lease_id: does not match the capsule",
        start("allow"),
        do("lease"),
        other_lease,
        do("execute"),
        do("close", "failed"),
    )


def test_control_plane_statements_signed_by_a_runner_fail() -> None:
    def runner_decides(run: Run) -> None:
        run.say(Stage.DECISION, {"outcome": "allow"}, key=run.ledger.runner)

    fails(
        r"entries\[2\]: signed by key .*, not by the control-plane key",
        do("propose"),
        do("assess"),
        runner_decides,
    )


def test_a_statement_about_another_proposal_fails() -> None:
    ledger = Ledger()
    proposal_id = RUNS["denied"](ledger)
    bundle = ledger.bundle(proposal_id)
    other = ledger.records["P-OTHER"][0]
    size = ledger.log.size()
    stray = {
        "leaf_index": other[0],
        "envelope": other[1],
        "inclusion_proof": [h.hex() for h in ledger.log.inclusion_proof(other[0], size)],
    }
    bundle["entries"].insert(1, stray)
    with pytest.raises(
        VerificationError,
        match=r"entries\[1\].statement.subject: is about "
        r"proposal P-OTHER",
    ):
        verify_bundle(bundle)


def test_checkpoint_and_key_problems_fail_first() -> None:
    ledger = Ledger()
    bundle = ledger.bundle(RUNS["allowed"](ledger))
    forged = copy.deepcopy(bundle)
    forged["checkpoint"] = sign_checkpoint(
        ORIGIN, ledger.log.size(), ledger.log.root(), SigningKey.generate()
    )
    with pytest.raises(VerificationError, match=r"^checkpoint: the checkpoint has no signature"):
        verify_bundle(forged)
    two = copy.deepcopy(bundle)
    two["keys"].append(BundleKey(SigningKey.generate().public, CONTROL_PLANE).as_dict())
    with pytest.raises(VerificationError, match="exactly one control-plane key, not 2"):
        verify_bundle(two)
    beyond = copy.deepcopy(bundle)
    beyond["entries"][0]["leaf_index"] = 10**6
    with pytest.raises(VerificationError, match=r"entries\[0\].leaf_index: 1000000 is not below"):
        verify_bundle(beyond)
    garbled = copy.deepcopy(bundle)
    garbled["entries"][0]["envelope"] = {"payload": float("nan")}
    with pytest.raises(VerificationError, match=r"entries\[0\].envelope: cannot be canonical"):
        verify_bundle(garbled)
    with pytest.raises(VerificationError, match="format"):
        verify_bundle({**bundle, "format": "other"})


def test_extra_signatures_or_fields_in_an_envelope_fail() -> None:
    ledger = Ledger()
    run = Run(ledger, "P-1", content())
    run.propose()
    envelope = ledger.records["P-1"][0][1]
    doubled = {**envelope, "signatures": envelope["signatures"] * 2}
    ledger.append_envelope("P-2", doubled)
    extra = {**envelope, "note": "hi"}
    ledger.append_envelope("P-3", extra)
    for proposal_id, pattern in (("P-2", "exactly one signature"), ("P-3", "exactly payload")):
        bundle = ledger.bundle(proposal_id)
        bundle["proposal_id"] = "P-1"
        with pytest.raises(VerificationError, match=pattern):
            verify_bundle(bundle)


def test_bob_and_alice_reach_a_quorum_of_two() -> None:
    _, bundle = record(start(count=2), do("vote", BOB), do("vote", ALICE), *RUN_IT)
    assert verify_bundle(bundle).approvers == ("bob", "alice")


def test_group_approvers_are_accepted_with_a_note() -> None:
    ledger, bundle = record(start(any_of=["team:sre"]), do("vote", ALICE), *RUN_IT)
    report = verify_bundle(bundle, ledger.control.public)
    assert report.notes and "team:sre" in report.notes[0]
    assert "cannot be checked offline" in report.summary()


def test_absurdly_nested_input_fails_cleanly() -> None:
    ledger = Ledger()
    bundle = ledger.bundle(RUNS["denied"](ledger))
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    bundle["entries"][1]["envelope"] = {"payload": deep}
    with pytest.raises(VerificationError, match=r"^entries\[1\].envelope: cannot be canonical"):
        verify_bundle(bundle)
