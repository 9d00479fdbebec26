"""Reports are accepted once: a runner's report resent (after a lost answer, or from its
outbox after an outage) is answered as the first time and recorded nothing new.

Driven through the real services on a real SQLite file, with a real runner key signing
statements about a program really run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from placet.domain.errors import Conflict, InputError
from placet.domain.lifecycle import Stage
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import Assignment, execution_statement, verification_statement
from placet.service.control_plane import ControlPlane
from placet.store.tables import ledger_entries
from tests.conftest import Tokens
from tests.service.test_rollback import ServiceRunner


def ledger_stages(plane: ControlPlane, proposal_id: str) -> list[str]:
    with plane.ctx.read() as conn:
        rows = conn.execute(
            select(ledger_entries.c.stage)
            .where(ledger_entries.c.proposal_id == proposal_id)
            .order_by(ledger_entries.c.leaf_index)
        ).all()
    return [row.stage for row in rows]


def leased(plane: ControlPlane, runner: ServiceRunner, tokens: Tokens) -> tuple[Any, Assignment]:
    agent = plane.principals.authenticate(tokens.agent)
    proposal, _ = plane.proposals.propose(
        agent,
        {
            "kind": "shell",
            "targets": ["svc"],
            "environment": "staging",
            "intent": "a change reported twice",
            "parameters": {"argv": ["true"]},
            "verify": {"argv": ["true"]},
        },
    )
    lease = plane.runners.lease(runner.principal, ["shell"])
    assert lease is not None and lease["proposal_id"] == proposal["id"]
    assignment = Assignment(
        proposal_id=proposal["id"],
        proposal_digest=proposal["digest"],
        runner=runner.principal.ref(),
        lease_id=lease["lease_id"],
        fencing_token=lease["fencing_token"],
        capsule_digest=capsule_digest(lease["capsule"]),
    )
    return lease, assignment


@pytest.fixture
def runner(plane: ControlPlane, tokens: Tokens, tmp_path: Path) -> ServiceRunner:
    return ServiceRunner(plane, tokens, tmp_path)


def test_a_resent_report_is_accepted_once(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner, tmp_path: Path
) -> None:
    lease, assignment = leased(plane, runner, tokens)
    report = plane.runners.report
    who, lease_id, fencing = runner.principal, lease["lease_id"], lease["fencing_token"]
    ran = runner.key.sign_statement(
        execution_statement(assignment, "shell", shell.run(["true"], cwd=tmp_path))
    )

    assert report(who, lease_id, fencing, ran, Stage.EXECUTION, 1) == {"state": "verifying"}
    # the answer was lost; the runner sends the same report again: same answer, nothing new
    assert report(who, lease_id, fencing, ran, Stage.EXECUTION, 1) == {"state": "verifying"}
    # an old runner without sequence numbers: execution is report 1
    assert report(who, lease_id, fencing, ran, Stage.EXECUTION) == {"state": "verifying"}
    proposal_id = assignment.proposal_id
    assert ledger_stages(plane, proposal_id).count("execution") == 1

    checked = runner.key.sign_statement(
        verification_statement(assignment, shell.run(["true"], cwd=tmp_path))
    )
    assert report(who, lease_id, fencing, checked, Stage.VERIFICATION, 2) == {"state": "succeeded"}
    # the lease is done now, yet both reports resent answer as the first time
    assert report(who, lease_id, fencing, checked, Stage.VERIFICATION, 2) == {"state": "succeeded"}
    assert report(who, lease_id, fencing, ran, Stage.EXECUTION, 1) == {"state": "verifying"}
    stages = ledger_stages(plane, proposal_id)
    assert stages.count("execution") == 1 and stages.count("verification") == 1
    assert plane.proposals.get(None, proposal_id)["state"] == "succeeded"


def test_a_sequence_reused_for_another_statement_is_refused(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner, tmp_path: Path
) -> None:
    lease, assignment = leased(plane, runner, tokens)
    report = plane.runners.report
    who, lease_id, fencing = runner.principal, lease["lease_id"], lease["fencing_token"]
    ran = runner.key.sign_statement(
        execution_statement(assignment, "shell", shell.run(["true"], cwd=tmp_path))
    )
    other = runner.key.sign_statement(
        execution_statement(assignment, "shell", shell.run(["false"], cwd=tmp_path))
    )
    assert report(who, lease_id, fencing, ran, Stage.EXECUTION, 1)["state"] == "verifying"
    with pytest.raises(Conflict, match=r"report 1 of lease .* was already recorded"):
        report(who, lease_id, fencing, other, Stage.EXECUTION, 1)
    with pytest.raises(Conflict, match="stale fencing token"):
        report(who, lease_id, fencing + 1, ran, Stage.EXECUTION, 1)
    with pytest.raises(InputError, match="positive integer"):
        report(who, lease_id, fencing, ran, Stage.EXECUTION, 0)
    assert ledger_stages(plane, assignment.proposal_id).count("execution") == 1
    assert plane.proposals.get(None, assignment.proposal_id)["state"] == "verifying"
