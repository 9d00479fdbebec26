"""Filing rollbacks: a failed verification files the declared rollback as a new proposal.

Driven through the real services on a real SQLite file; the runner's side is a real key
signing real statements about programs really run (``placet.runners.shell``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal
from placet.domain.proposal import parse_proposal
from placet.domain.signing import SigningKey
from placet.evidence.statements import statement_of
from placet.evidence.verify import verify_bundle
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import (
    Assignment,
    execution_statement,
    skipped_verification_statement,
    verification_statement,
)
from placet.runners.times import utc_now
from placet.service.control_plane import ControlPlane
from placet.store.tables import ledger_entries, proposals
from tests.conftest import Tokens

ROLLBACK = {
    "kind": "shell",
    "targets": ["svc"],
    "parameters": {"argv": ["true"]},
    "intent": "undo the change",
}


def body(environment: str = "staging", **extra: Any) -> dict[str, Any]:
    """A shell proposal whose verification fails (``false``), with ``extra`` fields."""
    return {
        "kind": "shell",
        "targets": ["svc"],
        "environment": environment,
        "intent": "change that must be verified",
        "parameters": {"argv": ["true"]},
        "verify": {"argv": ["false"]},
        **extra,
    }


class ServiceRunner:
    """A runner principal with a real key, driving RunnerService as the runner process does."""

    def __init__(self, plane: ControlPlane, tokens: Tokens, work: Path) -> None:
        self.plane = plane
        self.work = work
        self.principal: Principal = plane.principals.authenticate(tokens.runner)
        self.key = SigningKey.generate()
        plane.runners.register(self.principal, self.key.public.b64, ["shell"])
        # (tests.conftest labels runner-1 env=staging and env=production)

    def run_one(self, proposal_id: str) -> dict[str, Any]:
        """Lease ``proposal_id``, run its action and verify command, report both."""
        lease = self.plane.runners.lease(self.principal, ["shell"])
        assert lease is not None and lease["proposal_id"] == proposal_id
        with self.plane.ctx.read() as conn:
            content = self.plane.proposals.load(conn, proposal_id)[1].snapshot.content
        assert content is not None
        assignment = Assignment(
            proposal_id=proposal_id,
            proposal_digest=content.digest,
            runner=self.principal.ref(),
            lease_id=lease["lease_id"],
            fencing_token=lease["fencing_token"],
            capsule_digest=capsule_digest(lease["capsule"]),
        )
        done = shell.run(content.parameters["argv"], cwd=self.work)
        state = self._report(lease, Stage.EXECUTION, execution_statement(assignment, "shell", done))
        if state != "verifying":
            return self.plane.proposals.get(None, proposal_id)
        if content.verify is None:
            said = skipped_verification_statement(assignment, execution_ok=True, at=utc_now())
        else:
            check = shell.run(content.verify["argv"], cwd=self.work)
            said = verification_statement(assignment, check)
        self._report(lease, Stage.VERIFICATION, said)
        return self.plane.proposals.get(None, proposal_id)

    def _report(self, lease: dict[str, Any], stage: Stage, statement: dict[str, Any]) -> str:
        envelope = self.key.sign_statement(statement)
        answer = self.plane.runners.report(
            self.principal, lease["lease_id"], lease["fencing_token"], envelope, stage
        )
        return str(answer["state"])


@pytest.fixture
def runner(plane: ControlPlane, tokens: Tokens, tmp_path: Path) -> ServiceRunner:
    return ServiceRunner(plane, tokens, tmp_path)


def all_ids(plane: ControlPlane) -> set[str]:
    with plane.ctx.read() as conn:
        return {r.id for r in conn.execute(select(proposals.c.id)).all()}


def proposal_predicate(plane: ControlPlane, proposal_id: str) -> dict[str, Any]:
    with plane.ctx.read() as conn:
        row = conn.execute(
            select(ledger_entries.c.envelope)
            .where(
                ledger_entries.c.proposal_id == proposal_id,
                ledger_entries.c.stage == Stage.PROPOSAL.value,
            )
            .order_by(ledger_entries.c.leaf_index)
        ).first()
    assert row is not None
    return dict(statement_of(json.loads(row.envelope)).predicate)


def test_a_failed_verification_files_the_declared_rollback(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    original, _ = plane.proposals.propose(agent, body(rollback=ROLLBACK))
    assert original["state"] == "authorized"
    assert original["rollback"] == {**ROLLBACK, "scope": []}
    assert original["rollback_of"] is None
    before = all_ids(plane)

    final = runner.run_one(original["id"])

    (new_id,) = all_ids(plane) - before
    assert final["state"] == "failed"
    assert final["reason"].startswith("verification failed")
    assert f"rollback filed as proposal {new_id} (authorized)" in final["reason"]
    rollback = plane.proposals.get(None, new_id)
    assert rollback["agent"] == original["agent"]
    assert rollback["environment"] == "staging"
    assert (rollback["kind"], rollback["parameters"], rollback["intent"]) == (
        "shell",
        {"argv": ["true"]},
        "undo the change",
    )
    assert rollback["rollback_of"] == {"id": original["id"], "digest": original["digest"]}
    assert rollback["rollback"] is None
    # governed like any other: the default policy allows shell in staging
    assert rollback["state"] == "authorized"
    assert rollback["decision"]["outcome"] == "allow"
    expected = parse_proposal({**ROLLBACK, "environment": "staging"}, agent.id)
    assert rollback["digest"] == expected.digest
    predicate = proposal_predicate(plane, new_id)
    assert predicate["rollback_of"] == {"id": original["id"], "digest": original["digest"]}
    assert predicate["proposal"] == expected.as_dict()
    # both evidence bundles verify offline; the original's closure names the rollback
    report = verify_bundle(plane.ledger.export(original["id"]), plane.ctx.key.public)
    assert report.final_state == "failed"
    closure = plane.ledger.export(original["id"])["entries"][-1]
    assert new_id in statement_of(closure["envelope"]).predicate["reason"]
    # the rollback then runs like any proposal, and its record verifies too
    assert runner.run_one(new_id)["state"] == "succeeded"
    assert (
        verify_bundle(plane.ledger.export(new_id), plane.ctx.key.public).final_state == "succeeded"
    )


def test_the_rollback_is_decided_by_policy_and_keeps_its_link_when_approved(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    human = plane.principals.authenticate(tokens.human)
    original, _ = plane.proposals.propose(agent, body("production", rollback=ROLLBACK))
    assert original["state"] == "pending_approval"
    plane.proposals.approve(human, original["id"])
    before = all_ids(plane)

    final = runner.run_one(original["id"])

    (new_id,) = all_ids(plane) - before
    assert final["state"] == "failed" and new_id in final["reason"]
    rollback = plane.proposals.get(None, new_id)
    assert rollback["state"] == "pending_approval"  # production needs a human, rollback or not
    approved = plane.proposals.approve(human, new_id)
    assert approved["state"] == "authorized"
    assert approved["rollback_of"] == {"id": original["id"], "digest": original["digest"]}
    # the rollback then runs like any proposal (its own verification: none, so it succeeds)
    assert runner.run_one(new_id)["state"] == "succeeded"


def test_a_rollback_verification_failure_files_nothing_further(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    failing_rollback = {**ROLLBACK, "verify": {"argv": ["false"]}}
    original, _ = plane.proposals.propose(agent, body(rollback=failing_rollback))
    before = all_ids(plane)
    runner.run_one(original["id"])
    (new_id,) = all_ids(plane) - before
    after_first = all_ids(plane)
    final = runner.run_one(new_id)
    assert final["state"] == "failed"
    assert final["reason"].startswith("verification failed")
    assert "rollback" not in final["reason"]
    assert all_ids(plane) == after_first


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, "verification failed"),  # no rollback declared
        ({"rollback": ROLLBACK, "parameters": {"argv": ["false"]}}, "execution failed"),
    ],
)
def test_nothing_is_filed_without_a_rollback_or_on_execution_failure(
    plane: ControlPlane,
    tokens: Tokens,
    runner: ServiceRunner,
    extra: dict[str, Any],
    reason: str,
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    original, _ = plane.proposals.propose(agent, body(**extra))
    before = all_ids(plane)
    final = runner.run_one(original["id"])
    assert final["state"] == "failed"
    assert final["reason"].startswith(reason)
    assert "rollback" not in final["reason"]
    assert all_ids(plane) == before


def test_a_passing_verification_files_nothing(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    original, _ = plane.proposals.propose(agent, body(rollback=ROLLBACK, verify={"argv": ["true"]}))
    before = all_ids(plane)
    assert runner.run_one(original["id"])["state"] == "succeeded"
    assert all_ids(plane) == before
