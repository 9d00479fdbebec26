"""A lost runner: an idempotent action with retries left is requeued and leased again; any
other action ends failed and never runs twice. Real SQLite file, real keys, real programs
(``placet.runners.shell``), the control plane's clock moved by the test."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from placet.domain.errors import Conflict
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal
from placet.domain.signing import SigningKey
from placet.evidence.statements import statement_of
from placet.evidence.verify import verify_bundle
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import (
    Assignment,
    execution_statement,
    skipped_verification_statement,
)
from placet.runners.times import utc_now
from placet.service.control_plane import ControlPlane
from tests.conftest import Tokens
from tests.domain.retry_kind import RETRIABLE, declare
from tests.service.test_authority_flow import T0, Clock
from tests.service.test_lifecycle_service import stages

RETRY_ONCE = b"""package placet
import rego.v1
decision := {
  "outcome": "allow",
  "reasons": ["a lost runner may be replaced once"],
  "retries": 1,
}
"""
KINDS = [RETRIABLE, "shell"]


def proposal(kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "targets": ["svc"],
        "environment": "staging",
        "intent": "something a runner runs",
        "parameters": {"argv": ["true"]} if kind == "shell" else {},
    }


class Runner:
    """A runner principal with a real key, driving RunnerService as the runner process does."""

    def __init__(self, plane: ControlPlane, principal: Principal, work: Path) -> None:
        self.plane = plane
        self.principal = principal
        self.work = work
        self.key = SigningKey.generate()
        plane.runners.register(principal, self.key.public.b64, KINDS)

    def lease(self) -> dict[str, Any] | None:
        return self.plane.runners.lease(self.principal, KINDS)

    def finish(self, lease: dict[str, Any]) -> str:
        """Run ``true`` for the leased capsule and report execution and verification."""
        proposal_id = lease["proposal_id"]
        with self.plane.ctx.read() as conn:
            digest = self.plane.proposals.load(conn, proposal_id)[1].snapshot.digest
        assignment = Assignment(
            proposal_id=proposal_id,
            proposal_digest=digest,
            runner=self.principal.ref(),
            lease_id=lease["lease_id"],
            fencing_token=lease["fencing_token"],
            capsule_digest=capsule_digest(lease["capsule"]),
        )
        done = shell.run(["true"], cwd=self.work)
        self._report(lease, Stage.EXECUTION, execution_statement(assignment, RETRIABLE, done))
        said = skipped_verification_statement(assignment, execution_ok=True, at=utc_now())
        return self._report(lease, Stage.VERIFICATION, said)

    def _report(self, lease: dict[str, Any], stage: Stage, statement: dict[str, Any]) -> str:
        answer = self.plane.runners.report(
            self.principal,
            lease["lease_id"],
            lease["fencing_token"],
            self.key.sign_statement(statement),
            stage,
        )
        return str(answer["state"])


@pytest.fixture
def clock(plane: ControlPlane) -> Clock:
    clock = Clock(T0)
    plane.ctx.clock = clock
    return clock


@pytest.fixture
def runners(plane: ControlPlane, tokens: Tokens, tmp_path: Path) -> tuple[Runner, Runner]:
    """runner-1 (from tests.conftest) and runner-2, both serving env=staging; policy allows
    every proposal with one retry."""
    declare()
    plane.policies.push({"retry.rego": RETRY_ONCE}, name="retry-once", author="ada")
    first = plane.principals.authenticate(tokens.runner)
    _, token = plane.principals.add("runner-2", "runner", "olivia")
    plane.runners.set_labels("runner-2", {"env": ["staging"]})
    second = plane.principals.authenticate(token)
    return Runner(plane, first, tmp_path), Runner(plane, second, tmp_path)


def lose(plane: ControlPlane, clock: Clock) -> int:
    """Let every active lease expire without a heartbeat, then reap."""
    clock.now += timedelta(seconds=plane.ctx.settings.lease_seconds + 1)
    return plane.runners.reap()


def propose(plane: ControlPlane, tokens: Tokens, kind: str) -> str:
    view, _ = plane.proposals.propose(plane.principals.authenticate(tokens.agent), proposal(kind))
    assert view["state"] == "authorized"
    assert view["decision"]["outcome"] == "allow"
    return str(view["id"])


@pytest.mark.parametrize("same_runner", [False, True])
def test_an_idempotent_action_is_retried_after_its_runner_is_lost(
    plane: ControlPlane,
    tokens: Tokens,
    clock: Clock,
    runners: tuple[Runner, Runner],
    same_runner: bool,
) -> None:
    first, second = runners
    proposal_id = propose(plane, tokens, RETRIABLE)
    lost = first.lease()
    assert lost is not None and lost["proposal_id"] == proposal_id

    assert lose(plane, clock) == 1

    view = plane.proposals.get(None, proposal_id)
    assert view["state"] == "authorized"
    assert stages(plane, proposal_id)[-2:] == ["capsule", "requeue"]
    requeue = statement_of(plane.ledger.export(proposal_id)["entries"][-1]["envelope"])
    assert requeue.predicate["reason"] == "runner lost; retrying (attempt 2 of 2)"
    assert requeue.predicate["lease_id"] == lost["lease_id"]
    with pytest.raises(Conflict, match="lost"):  # the lost runner's late report is refused
        first.finish(lost)

    retry = (first if same_runner else second).lease()
    assert retry is not None and retry["proposal_id"] == proposal_id
    assert retry["fencing_token"] > lost["fencing_token"]
    assert (first if same_runner else second).finish(retry) == "succeeded"

    report = verify_bundle(plane.ledger.export(proposal_id), plane.ctx.key.public)
    assert report.final_state == "succeeded"
    assert list(report.stages[-6:]) == [
        "capsule",
        "requeue",
        "capsule",
        "execution",
        "verification",
        "closure",
    ]
    assert any("requeued for attempt 2" in note for note in report.notes)
    expected_keys = {first.key.public.keyid} | (set() if same_runner else {second.key.public.keyid})
    assert set(report.runner_keyids) == expected_keys


def test_the_retries_run_out_and_the_proposal_fails(
    plane: ControlPlane, tokens: Tokens, clock: Clock, runners: tuple[Runner, Runner]
) -> None:
    first, second = runners
    proposal_id = propose(plane, tokens, RETRIABLE)
    assert first.lease() is not None
    assert lose(plane, clock) == 1
    assert second.lease() is not None
    assert lose(plane, clock) == 1

    view = plane.proposals.get(None, proposal_id)
    assert view["state"] == "failed"
    assert view["reason"].startswith("runner lost: lease")
    assert first.lease() is None and second.lease() is None
    report = verify_bundle(plane.ledger.export(proposal_id), plane.ctx.key.public)
    assert report.final_state == "failed"
    assert report.stages.count("capsule") == 2
    assert report.stages.count("requeue") == 1


def test_a_non_idempotent_shell_action_is_never_retried(
    plane: ControlPlane, tokens: Tokens, clock: Clock, runners: tuple[Runner, Runner]
) -> None:
    first, second = runners
    proposal_id = propose(plane, tokens, "shell")
    assert first.lease() is not None

    assert lose(plane, clock) == 1

    view = plane.proposals.get(None, proposal_id)
    assert view["state"] == "failed"
    assert "runner lost" in view["reason"]
    assert first.lease() is None and second.lease() is None
    assert "requeue" not in stages(plane, proposal_id)
    report = verify_bundle(plane.ledger.export(proposal_id), plane.ctx.key.public)
    assert report.final_state == "failed"
    assert report.stages.count("capsule") == 1


def test_the_decision_statement_records_the_retries(
    plane: ControlPlane, tokens: Tokens, clock: Clock, runners: tuple[Runner, Runner]
) -> None:
    proposal_id = propose(plane, tokens, RETRIABLE)
    entries = plane.ledger.export(proposal_id)["entries"]
    decisions = [
        statement_of(e["envelope"])
        for e in entries
        if statement_of(e["envelope"]).stage is Stage.DECISION
    ]
    assert [d.predicate["retries"] for d in decisions] == [1]
