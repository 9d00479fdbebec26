"""Evidence of a misdirected capsule: another runner's signed refusal of the capsule.

The capsule is leased to runner-a; runner-b (whose key is in the bundle) was handed it and
refused it. The record holds runner-b's refusal (an execution statement, signed by runner-b)
and a failed closure naming the lease and runner-b's key. It verifies, and says so; each
broken rule, and any tampering, fails verification naming the entry and field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from placet.domain.canonical import canonical_json, sha256_hex
from placet.domain.lifecycle import Stage
from placet.domain.signing import SigningKey
from placet.evidence.bundle import RUNNER, BundleKey
from placet.evidence.verify import VerificationError, verify_bundle

from .records import AT, RUNNER_REF, Ledger, Run, content, moves

OTHER_REF = {"id": "run-02", "name": "runner-b", "kind": "runner"}


@dataclass
class TwoRunners(Ledger):
    """The control plane with two registered runners: ``runner`` (leased) and ``other``."""

    other: SigningKey = field(default_factory=SigningKey.generate)

    def keys(self) -> list[BundleKey]:
        return [*super().keys(), BundleKey(self.other.public, RUNNER)]


Step = Callable[[Run], object]


def authorize_and_lease(run: Run) -> None:
    run.propose()
    run.assess()
    run.decide("allow")
    run.lease()


def refuse(key: str = "other", **changes: Any) -> Step:
    """runner-b's refusal of the capsule (signed by ``key``: other, runner or a stranger)."""

    def step(run: Run) -> None:
        ledger = run.ledger
        assert isinstance(ledger, TwoRunners)
        signer = {"other": ledger.other, "runner": ledger.runner}.get(key) or SigningKey.generate()
        predicate = {
            "runner": OTHER_REF,
            **run.lease_terms(),
            "capsule_digest": run.capsule["capsule_digest"],
            "proposal_digest": run.digest,
            "kind": "shell",
            "argv": [],
            "exit_code": None,
            "timed_out": False,
            "ok": False,
            "error": f"capsule refused: it is for runner {RUNNER_REF['id']}, not run-02",
            "stdout_sha256": sha256_hex(b""),
            "stderr_sha256": sha256_hex(b""),
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "started_at": AT,
            "finished_at": AT,
            **changes,
        }
        run.say(Stage.EXECUTION, predicate, signer)

    return step


def close(state: str = "failed", named: bool = True, **changes: Any) -> Step:
    """The control plane's closure naming the misdirected lease and runner-b's key (unless
    not ``named``)."""

    def step(run: Run) -> None:
        ledger = run.ledger
        assert isinstance(ledger, TwoRunners)
        misdirected = {
            "lease_id": run.capsule["lease_id"],
            "fencing_token": run.capsule["fencing_token"],
            "capsule_digest": run.capsule["capsule_digest"],
            "leased_to": RUNNER_REF,
            "refused_by": OTHER_REF,
            "runner_keyid": ledger.other.keyid,
            "runner_public_key": ledger.other.public.b64,
            **changes,
        }
        predicate: dict[str, Any] = {
            "state": state,
            "reason": "capsule misdirected: ...",
            "misdirected": misdirected,
            "transitions": moves(("executing", state)),
            "at": AT,
        }
        if not named:
            del predicate["misdirected"]
        run.say(Stage.CLOSURE, predicate)

    return step


def record(*steps: Step, alter: Any = None) -> tuple[TwoRunners, dict[str, Any]]:
    ledger = TwoRunners()
    if alter is not None:
        ledger.alter.update(alter)
    run = Run(ledger, "P-1", content())
    for step in steps:
        step(run)
    return ledger, json.loads(json.dumps(ledger.bundle("P-1")))


def fails(pattern: str, *steps: Step) -> None:
    ledger, bundle = record(*steps)
    with pytest.raises(VerificationError, match=pattern):
        verify_bundle(bundle, ledger.control.public)


def test_a_refusal_by_another_runner_verifies_and_the_report_says_so() -> None:
    ledger, bundle = record(authorize_and_lease, refuse(), close())
    report = verify_bundle(bundle, ledger.control.public)
    assert report.final_state == "failed"
    assert report.stages[-3:] == ("capsule", "execution", "closure")
    assert report.runner_keyids == (ledger.runner.keyid, ledger.other.keyid)
    (note,) = report.notes
    assert note.startswith(
        "the capsule of lease lease-1 (leased to runner runner-a) was refused as misdirected"
        " by runner runner-b (run-02, key "
    )
    assert "refused as misdirected by runner runner-b" in report.summary()


def test_a_refusal_after_the_leased_runner_executed_verifies() -> None:
    ledger, bundle = record(authorize_and_lease, lambda run: run.execute(), refuse(), close())
    assert verify_bundle(bundle, ledger.control.public).final_state == "failed"


BROKEN: list[tuple[str, tuple[Step, ...]]] = [
    # signed by a key the bundle does not hold
    (r"entries\[4\]: signed by key .*, not by the runner key", (refuse("stranger"), close())),
    # the other runner's statement is not a refusal
    (r"entries\[4\].predicate: signed by runner runner-b, not .* runner-a", (refuse(ok=True),)),
    (r"entries\[4\].predicate: .* can only be a refusal", (refuse(argv=["rm", "-rf", "/"]),)),
    (r"entries\[4\].predicate: .* can only be a refusal", (refuse(error="no thanks"),)),
    # it must refuse exactly the capsule's lease
    (r"entries\[4\].predicate.lease_id: does not match the capsule", (refuse(lease_id="x"),)),
    (r"entries\[4\].predicate.fencing_token: does not match", (refuse(fencing_token=8),)),
    (
        r"entries\[4\].predicate.capsule_digest: does not match",
        (refuse(capsule_digest="1" * 64),),
    ),
    # signed by another key while claiming to be the capsule's runner
    (
        r"entries\[4\]: signed by key .*, not by the runner key the capsule names",
        (refuse(runner=RUNNER_REF),),
    ),
    # the leased runner's key cannot refuse in another runner's name
    (
        r"entries\[4\].predicate.runner: is not the runner the capsule names",
        (refuse("runner"),),
    ),
    # nothing but a failed closure naming the refusal may follow
    (r"succeeded cannot close", (refuse(), close("succeeded"))),
    (
        r"entries\[5\]: the verification statement cannot come here",
        (refuse(), lambda run: run.verify(), close()),
    ),
    (r"entries\[5\].predicate.misdirected: must name", (refuse(), close(named=False))),
    (
        r"entries\[5\].predicate.misdirected.runner_keyid: is not the key",
        (refuse(), close(runner_keyid="0" * 64)),
    ),
    (
        r"entries\[5\].predicate.misdirected.refused_by: is not the runner",
        (refuse(), close(refused_by=RUNNER_REF)),
    ),
    (
        r"entries\[5\].predicate.misdirected.lease_id: is not the capsule's lease",
        (refuse(), close(lease_id="lease-9")),
    ),
]


@pytest.mark.parametrize(("pattern", "steps"), BROKEN)
def test_broken_refusals_are_named(pattern: str, steps: tuple[Step, ...]) -> None:
    closed = any(step.__qualname__.startswith("close.") for step in steps)
    fails(pattern, authorize_and_lease, *steps, *(() if closed else (close(),)))


def test_a_refusal_before_any_capsule_fails() -> None:
    def unleased(run: Run) -> None:
        run.propose()
        run.assess()
        run.decide("allow")

    def refuse_nothing(run: Run) -> None:
        run.say(Stage.EXECUTION, {"runner": OTHER_REF, "ok": False}, run.ledger.runner)

    fails(r"entries\[3\]: a execution statement needs an earlier capsule", unleased, refuse_nothing)


def tamper_refusal(envelope: dict[str, Any]) -> dict[str, Any]:
    """Change the refusal's payload after signing, keeping the signature (a log writer could)."""
    said = json.loads(base64.b64decode(envelope["payload"]))
    said["predicate"]["error"] = "capsule refused: (edited)"
    payload = base64.b64encode(canonical_json(said)).decode()
    return {**envelope, "payload": payload}


def test_a_tampered_refusal_fails_verification() -> None:
    # Edited in the bundle: the leaf no longer matches the logged one.
    ledger, bundle = record(authorize_and_lease, refuse(), close())
    bundle["entries"][4]["envelope"] = tamper_refusal(bundle["entries"][4]["envelope"])
    with pytest.raises(VerificationError, match=r"entries\[4\].inclusion_proof"):
        verify_bundle(bundle, ledger.control.public)
    # Edited before it was logged (by a log writer without runner-b's key): the signature.
    ledger, bundle = record(
        authorize_and_lease, refuse(), close(), alter={("P-1", 4): tamper_refusal}
    )
    with pytest.raises(VerificationError, match=r"entries\[4\]: signature does not verify"):
        verify_bundle(bundle, ledger.control.public)
    # runner-b's key removed from the bundle: nothing can check the refusal.
    ledger, bundle = record(authorize_and_lease, refuse(), close())
    bundle["keys"] = [k for k in bundle["keys"] if k["keyid"] != ledger.other.keyid]
    with pytest.raises(VerificationError, match=r"entries\[4\]: signed by key"):
        verify_bundle(bundle, ledger.control.public)
