"""The lifecycle against a real SQLite file: evidence per transition, fail closed, idempotency."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from placet.domain.errors import Conflict, Forbidden, IllegalTransition, InputError
from placet.evidence.verify import verify_bundle
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from placet.store.tables import ledger_entries, proposals
from tests.conftest import Tokens

STAGING = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "test",
    "parameters": {"argv": ["true"]},
}


def counts(cp: ControlPlane) -> tuple[int, int]:
    with cp.ctx.read() as conn:
        n_entries = conn.execute(select(func.count()).select_from(ledger_entries)).scalar()
        n_props = conn.execute(select(func.count()).select_from(proposals)).scalar()
    return int(n_entries or 0), int(n_props or 0)


def stages(cp: ControlPlane, proposal_id: str) -> list[str]:
    with cp.ctx.read() as conn:
        rows = conn.execute(
            select(ledger_entries.c.stage)
            .where(ledger_entries.c.proposal_id == proposal_id)
            .order_by(ledger_entries.c.leaf_index)
        ).all()
    return [r.stage for r in rows]


def test_each_decision_path_is_recorded(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    allowed, _ = plane.proposals.propose(agent, STAGING)
    gated, _ = plane.proposals.propose(agent, {**STAGING, "environment": "production"})
    denied, _ = plane.proposals.propose(agent, {**STAGING, "kind": "purge_data"})
    assert allowed["state"] == "authorized"
    assert gated["state"] == "pending_approval"
    assert denied["state"] == "denied"
    assert stages(plane, allowed["id"]) == ["proposal", "assessment", "decision"]
    assert stages(plane, denied["id"]) == ["proposal", "assessment", "decision", "closure"]
    human = plane.principals.authenticate(tokens.human)
    approved = plane.proposals.approve(human, gated["id"])
    assert approved["state"] == "authorized"
    assert stages(plane, gated["id"])[-1] == "approval"
    report = verify_bundle(plane.ledger.export(denied["id"]), plane.ctx.key.public)
    assert report.final_state == "denied"


def test_refusals_change_nothing(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    owner = plane.principals.authenticate(tokens.owner)
    human = plane.principals.authenticate(tokens.human)
    gated, _ = plane.proposals.propose(agent, {**STAGING, "environment": "production"})
    before = counts(plane)
    with pytest.raises(Forbidden):
        plane.proposals.approve(owner, gated["id"])
    with pytest.raises(Forbidden):
        plane.proposals.approve(agent, gated["id"])
    with pytest.raises(InputError):
        plane.proposals.propose(agent, {**STAGING, "targets": []})
    with pytest.raises(InputError):
        plane.proposals.deny(human, gated["id"], "  ")
    plane.proposals.deny(human, gated["id"], "not now")
    after_deny = counts(plane)
    with pytest.raises(IllegalTransition, match="state denied"):
        plane.proposals.approve(human, gated["id"])
    assert counts(plane) == after_deny
    assert after_deny[1] == before[1]


def test_idempotency_key_replays_and_conflicts(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    first, created = plane.proposals.propose(agent, STAGING, "same")
    again, created_again = plane.proposals.propose(agent, STAGING, "same")
    assert created and not created_again and again["id"] == first["id"]
    with pytest.raises(Conflict, match="other content"):
        plane.proposals.propose(agent, {**STAGING, "intent": "other"}, "same")
    other = plane.principals.authenticate(tokens.other_agent)
    theirs, created_theirs = plane.proposals.propose(other, STAGING, "same")
    assert created_theirs and theirs["id"] != first["id"]  # keys are per agent


def test_a_policy_error_fails_closed(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "p.rego").write_text(
        "package placet\nimport rego.v1\n"
        'decision := {"outcome": "allow", "reasons": ["ok"]} '
        'if input.proposal.environment == "staging"\n'
    )
    settings = load_settings(tmp_path / "data", policy_dir=policy)
    initialise(settings)
    cp = ControlPlane.open(settings)
    try:
        cp.principals.add("olivia", "human")
        cp.principals.add("bot", "agent", "olivia")
        agent = cp.principals.by_name("bot")
        ok, _ = cp.proposals.propose(agent, STAGING)
        broken, _ = cp.proposals.propose(agent, {**STAGING, "environment": "production"})
        assert ok["state"] == "authorized"
        assert broken["state"] == "failed"
        assert broken["reason"].startswith("policy error:")
        assert stages(cp, broken["id"]) == ["proposal", "assessment", "closure"]
        report = verify_bundle(cp.ledger.export(broken["id"]), cp.ctx.key.public)
        assert report.final_state == "failed"
    finally:
        cp.close()


def test_a_ledger_failure_writes_nothing(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    plane.proposals.propose(agent, STAGING)
    before = counts(plane)
    with plane.ctx.write() as conn:  # make every ledger insert fail from now on
        conn.execute(
            text(
                "CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_entries "
                "BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END"
            )
        )
    with pytest.raises(Exception, match="ledger unavailable"):
        plane.proposals.propose(agent, STAGING)
    assert counts(plane) == before


def test_concurrent_proposals_get_a_gapless_log(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    made: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                made.append(plane.proposals.propose(agent, STAGING)[0])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with plane.ctx.read() as conn:
        indexes = [
            r.leaf_index
            for r in conn.execute(
                select(ledger_entries.c.leaf_index).order_by(ledger_entries.c.leaf_index)
            ).all()
        ]
    assert indexes == list(range(len(indexes))) and len(indexes) == 40 * 3
    for p in made[:5]:
        assert plane.proposals.cancel(agent, p["id"], "done")["state"] == "cancelled"
        report = verify_bundle(plane.ledger.export(p["id"]), plane.ctx.key.public)
        assert report.final_state == "cancelled"
