"""A misdirected capsule: a genuine capsule leased to runner B, presented to runner A.

A refuses it and reports the refusal (signed with its own key) to the refusals endpoint's
service: the capsule leaked, so B's lease ends ``misdirected``, the proposal ``failed`` naming
both runners and the lease, and A's refusal is in the ledger and the evidence bundle, which
verifies offline. Driven through the real services on a real SQLite file with real keys.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from placet.domain.errors import Conflict, InputError, NotFound
from placet.domain.lifecycle import Stage
from placet.domain.principals import Principal
from placet.domain.signing import PublicKey, SigningKey
from placet.evidence.statements import statement_of
from placet.evidence.verify import verify_bundle
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import (
    Assignment,
    execution_statement,
    unstarted_execution_statement,
)
from placet.runners.times import utc_now
from placet.service.control_plane import ControlPlane
from placet.store.tables import leases, ledger_entries
from tests.conftest import Tokens


class Edge:
    """A runner an admin registered (key, labels), which then registered itself."""

    def __init__(self, plane: ControlPlane, name: str, env: str) -> None:
        self.key = SigningKey.generate()
        labels = {"env": [env]}
        made = plane.runners.enrol(plane.principals, name, self.key.public.b64, "olivia", labels)
        self.principal: Principal = plane.principals.authenticate(str(made["token"]))
        plane.runners.register(self.principal, self.key.public.b64, ["shell"])


@pytest.fixture
def edges(plane: ControlPlane, tokens: Tokens) -> tuple[Edge, Edge]:
    """Runner A (labels env=nowhere: leases nothing here) and runner B (env=staging)."""
    return Edge(plane, "runner-a", "nowhere"), Edge(plane, "runner-b", "staging")


def leased_to_b(plane: ControlPlane, tokens: Tokens, b: Edge, verify: bool = False) -> Any:
    """A staging shell proposal, leased to runner B; the lease answer."""
    agent = plane.principals.authenticate(tokens.agent)
    body: dict[str, Any] = {
        "kind": "shell",
        "targets": ["svc"],
        "environment": "staging",
        "intent": "a change whose capsule leaks",
        "parameters": {"argv": ["true"]},
    }
    if verify:
        body["verify"] = {"argv": ["true"]}
    proposal, _ = plane.proposals.propose(agent, body)
    lease = plane.runners.lease(b.principal, ["shell"])
    assert lease is not None and lease["proposal_id"] == proposal["id"]
    return lease


def assignment(lease: Any, edge: Edge, capsule: Any = None) -> Assignment:
    """What ``edge`` signs about ``lease``: the capsule's lease, token and digest."""
    capsule = lease["capsule"] if capsule is None else capsule
    return Assignment(
        proposal_id=lease["proposal_id"],
        proposal_digest=capsule_says(lease)["proposal_digest"],
        runner=edge.principal.ref(),
        lease_id=lease["lease_id"],
        fencing_token=lease["fencing_token"],
        capsule_digest=capsule_digest(capsule),
    )


def capsule_says(lease: Any) -> dict[str, Any]:
    """The capsule's payload (the test trusts it: the control plane just signed it)."""
    payload: dict[str, Any] = json.loads(base64.b64decode(lease["capsule"]["payload"]))
    return payload


def refusal(lease: Any, by: Edge, **changes: Any) -> dict[str, Any]:
    """``by``'s signed refusal of ``lease``'s capsule (``changes`` edit the predicate first)."""
    meant_for = capsule_says(lease)["runner_id"]
    said = unstarted_execution_statement(
        assignment(lease, by),
        kind="shell",
        argv=[],
        error=f"capsule refused: it is for runner {meant_for}, not {by.principal.id}",
        at=utc_now(),
    )
    said["predicate"].update(changes)
    return by.key.sign_statement(said)


def ledger_size(plane: ControlPlane) -> int:
    return plane.ledger.size()


def stages(plane: ControlPlane, proposal_id: str) -> list[str]:
    with plane.ctx.read() as conn:
        rows = conn.execute(
            select(ledger_entries.c.stage)
            .where(ledger_entries.c.proposal_id == proposal_id)
            .order_by(ledger_entries.c.leaf_index)
        ).all()
    return [row.stage for row in rows]


def lease_status(plane: ControlPlane, lease_id: str) -> str:
    with plane.ctx.read() as conn:
        return str(conn.execute(select(leases.c.status).where(leases.c.id == lease_id)).scalar())


def test_a_misdirected_capsule_fails_the_lease_and_the_refusal_is_in_the_verified_bundle(
    plane: ControlPlane, tokens: Tokens, edges: tuple[Edge, Edge]
) -> None:
    a, b = edges
    lease = leased_to_b(plane, tokens, b)
    proposal_id, lease_id = lease["proposal_id"], lease["lease_id"]
    envelope = refusal(lease, a)

    answer = plane.runners.refuse(a.principal, envelope)
    assert answer == {
        "state": "failed",
        "lease_id": lease_id,
        "proposal_id": proposal_id,
        "lease_status": "misdirected",
    }
    state = plane.proposals.get(None, proposal_id)
    assert state["state"] == "failed"
    reason = state["reason"]
    assert reason.startswith("capsule misdirected: the capsule of lease " + lease_id)
    assert f"leased to runner runner-b ({b.principal.id})" in reason
    assert f"presented to runner runner-a ({a.principal.id}), which refused it" in reason
    assert "runner lost" not in reason
    assert lease_status(plane, lease_id) == "misdirected"
    assert stages(plane, proposal_id)[-3:] == ["capsule", "execution", "closure"]

    # The same refusal resent: the same answer, nothing recorded.
    size = ledger_size(plane)
    assert plane.runners.refuse(a.principal, envelope) == answer
    assert ledger_size(plane) == size

    # B, which never got its capsule, has lost the lease: no heartbeat, no report.
    with pytest.raises(Conflict, match="is misdirected"):
        plane.runners.heartbeat(b.principal, lease_id, lease["fencing_token"])
    ran = b.key.sign_statement(
        execution_statement(assignment(lease, b), "shell", shell.run(["true"], cwd=Path.cwd()))
    )
    with pytest.raises(Conflict, match="is misdirected"):
        plane.runners.report(b.principal, lease_id, lease["fencing_token"], ran, Stage.EXECUTION)
    assert ledger_size(plane) == size

    bundle = plane.proposals.evidence(None, proposal_id)
    keyids = {key["keyid"] for key in bundle["keys"] if key["role"] == "runner"}
    assert keyids == {a.key.public.keyid, b.key.public.keyid}
    entries = [e["envelope"] for e in bundle["entries"]]
    (recorded,) = [e for e in entries if statement_of(e).stage is Stage.EXECUTION]
    assert recorded == envelope
    report = verify_bundle(bundle, plane.ctx.key.public)
    assert report.final_state == "failed"
    assert report.stages[-3:] == ("capsule", "execution", "closure")
    assert a.key.public.keyid in report.runner_keyids
    (note,) = [n for n in report.notes if "misdirected" in n]
    assert f"refused as misdirected by runner runner-a ({a.principal.id}" in note
    assert f"lease {lease_id} (leased to runner runner-b)" in note
    assert "refused as misdirected by runner runner-a" in report.summary()
    closure = statement_of(bundle["entries"][-1]["envelope"]).predicate
    assert closure["misdirected"]["runner_keyid"] == a.key.public.keyid
    assert PublicKey.from_b64(closure["misdirected"]["runner_public_key"]) == a.key.public


def test_a_refusal_after_the_leased_runner_executed_still_fails_the_proposal(
    plane: ControlPlane, tokens: Tokens, edges: tuple[Edge, Edge], tmp_path: Path
) -> None:
    """B ran its capsule (the proposal is verifying) when A shows it was also handed it."""
    a, b = edges
    lease = leased_to_b(plane, tokens, b, verify=True)
    ran = b.key.sign_statement(
        execution_statement(assignment(lease, b), "shell", shell.run(["true"], cwd=tmp_path))
    )
    answer = plane.runners.report(
        b.principal, lease["lease_id"], lease["fencing_token"], ran, Stage.EXECUTION
    )
    assert answer == {"state": "verifying"}
    assert plane.runners.refuse(a.principal, refusal(lease, a))["state"] == "failed"
    proposal_id = lease["proposal_id"]
    assert stages(plane, proposal_id)[-4:] == ["capsule", "execution", "execution", "closure"]
    report = verify_bundle(plane.proposals.evidence(None, proposal_id), plane.ctx.key.public)
    assert report.final_state == "failed"
    assert any("refused as misdirected by runner runner-a" in n for n in report.notes)


def test_refusals_that_do_not_prove_a_leak_are_refused_naming_the_field(
    plane: ControlPlane, tokens: Tokens, edges: tuple[Edge, Edge]
) -> None:
    a, b = edges
    lease = leased_to_b(plane, tokens, b)
    size = ledger_size(plane)
    refuse = plane.runners.refuse
    stranger = SigningKey.generate()
    forged_capsule = dict(lease["capsule"], signatures=[])
    tampered = a.key.sign_statement(
        unstarted_execution_statement(
            assignment(lease, a, forged_capsule),
            kind="shell",
            argv=[],
            error="capsule refused: it is for another runner",
            at=utc_now(),
        )
    )
    cases: list[tuple[Any, type[Exception], str]] = [
        (None, InputError, r"^envelope: must be the runner-signed"),
        # signed by a key that is not the calling runner's registered key
        (
            stranger.sign_statement(statement_of(refusal(lease, a)).as_dict()),
            InputError,
            r"^envelope: is not signed by this runner's registered key",
        ),
        # B's key, presented by A
        (
            b.key.sign_statement(statement_of(refusal(lease, a)).as_dict()),
            InputError,
            r"^envelope: is not signed by this runner's registered key",
        ),
        (refusal(lease, a, ok=True), InputError, r"^envelope.predicate.error: a refusal has"),
        (refusal(lease, a, error="nope"), InputError, r"^envelope.predicate.error"),
        (refusal(lease, a, argv=["true"]), InputError, r"^envelope.predicate.argv: must be empty"),
        (
            refusal(lease, a, runner=b.principal.ref()),
            InputError,
            r"^envelope.predicate.runner: must name the runner reporting it \(runner-a\)",
        ),
        (refusal(lease, a, lease_id=""), InputError, r"^envelope.predicate.lease_id"),
        (refusal(lease, a, lease_id="L-NOPE"), NotFound, "L-NOPE"),
        (
            refusal(lease, a, fencing_token=lease["fencing_token"] + 1),
            InputError,
            r"^envelope.predicate.fencing_token: is not the fencing token of lease",
        ),
        (tampered, InputError, r"^envelope.predicate.capsule_digest: is not the digest"),
        (
            refusal(lease, a, proposal_digest="0" * 64),
            InputError,
            r"^envelope.predicate.proposal_digest",
        ),
    ]
    for envelope, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            refuse(a.principal, envelope)
    # B cannot use this endpoint for its own lease.
    with pytest.raises(InputError, match=r"^envelope.predicate.lease_id: lease .* own"):
        refuse(b.principal, refusal(lease, b))
    assert ledger_size(plane) == size
    assert plane.proposals.get(None, lease["proposal_id"])["state"] == "executing"
    assert lease_status(plane, lease["lease_id"]) == "active"


def test_a_refusal_of_a_finished_lease_is_a_conflict_and_records_nothing(
    plane: ControlPlane, tokens: Tokens, edges: tuple[Edge, Edge], tmp_path: Path
) -> None:
    a, b = edges
    lease = leased_to_b(plane, tokens, b)
    failed = b.key.sign_statement(
        execution_statement(assignment(lease, b), "shell", shell.run(["false"], cwd=tmp_path))
    )
    answer = plane.runners.report(
        b.principal, lease["lease_id"], lease["fencing_token"], failed, Stage.EXECUTION
    )
    assert answer == {"state": "failed"}
    size = ledger_size(plane)
    with pytest.raises(Conflict, match=r"lease .* is done; the refusal is not recorded"):
        plane.runners.refuse(a.principal, refusal(lease, a))
    assert ledger_size(plane) == size
    assert lease_status(plane, lease["lease_id"]) == "done"


def test_a_second_different_refusal_of_the_same_lease_is_a_conflict(
    plane: ControlPlane, tokens: Tokens, edges: tuple[Edge, Edge]
) -> None:
    a, b = edges
    lease = leased_to_b(plane, tokens, b)
    plane.runners.refuse(a.principal, refusal(lease, a))
    size = ledger_size(plane)
    with pytest.raises(Conflict, match="already ended by another refusal"):
        plane.runners.refuse(a.principal, refusal(lease, a, error="capsule refused: again"))
    assert ledger_size(plane) == size


def test_only_runners_report_refusals(
    plane: ControlPlane, tokens: Tokens, edges: tuple[Edge, Edge]
) -> None:
    a, b = edges
    lease = leased_to_b(plane, tokens, b)
    human = plane.principals.authenticate(tokens.human)
    with pytest.raises(Exception, match="only runners"):
        plane.runners.refuse(human, refusal(lease, a))
