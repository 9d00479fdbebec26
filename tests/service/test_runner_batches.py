"""Leasing several capsules in one transaction and recording several reports in one.

Driven through the real services on a real SQLite file; the runner's side is a real key
signing real statements about programs really run (``placet.runners.shell``), and evidence
is checked with the offline verifier.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from placet.domain.errors import Conflict, Forbidden, IllegalTransition, InputError, NotFound
from placet.domain.lifecycle import Stage
from placet.domain.signing import SigningKey
from placet.evidence.statements import statement_of
from placet.evidence.verify import verify_bundle
from placet.runners import shell
from placet.runners.capsule import capsule_digest
from placet.runners.statements import Assignment, execution_statement, verification_statement
from placet.service.control_plane import ControlPlane
from placet.service.runner_checks import MAX_LEASES, MAX_REPORTS, lease_count
from placet.store.tables import lease_reports, ledger_entries
from tests.conftest import Tokens
from tests.service.test_lifecycle_service import stages
from tests.service.test_rollback import ServiceRunner

KINDS = ["shell"]


def propose(plane: ControlPlane, tokens: Tokens, count: int) -> list[str]:
    """``count`` authorized staging shell proposals (verified by ``true``), oldest first."""
    agent = plane.principals.authenticate(tokens.agent)
    made = []
    for i in range(count):
        view, _ = plane.proposals.propose(
            agent,
            {
                "kind": "shell",
                "targets": ["svc"],
                "environment": "staging",
                "intent": f"batched change {i}",
                "parameters": {"argv": ["true"]},
                "verify": {"argv": ["true"]},
            },
        )
        assert view["state"] == "authorized"
        made.append(str(view["id"]))
    return made


def assignment(plane: ControlPlane, runner: ServiceRunner, offer: dict[str, Any]) -> Assignment:
    """What the runner was assigned by ``offer`` (as the runner process builds it)."""
    with plane.ctx.read() as conn:
        digest = plane.proposals.load(conn, offer["proposal_id"])[1].snapshot.digest
    return Assignment(
        proposal_id=offer["proposal_id"],
        proposal_digest=digest,
        runner=runner.principal.ref(),
        lease_id=offer["lease_id"],
        fencing_token=offer["fencing_token"],
        capsule_digest=capsule_digest(offer["capsule"]),
    )


def item(
    offer: dict[str, Any], stage: str, envelope: dict[str, Any], /, **changes: Any
) -> dict[str, Any]:
    """One report of a batch for ``offer``'s lease, with ``changes`` applied."""
    report = {
        "lease_id": offer["lease_id"],
        "stage": stage,
        "fencing_token": offer["fencing_token"],
        "sequence": 1 if stage == "execution" else 2,
        "envelope": envelope,
    }
    report.update(changes)
    return report


def executed(
    runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any], key: SigningKey | None = None
) -> dict[str, Any]:
    """The signed execution statement of ``true`` run for ``offer``."""
    done = shell.run(["true"], cwd=runner.work)
    said = execution_statement(assignment(plane, runner, offer), "shell", done)
    return (key or runner.key).sign_statement(said)


def verified(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> dict[str, Any]:
    """The signed verification statement of ``true`` checked for ``offer``."""
    check = shell.run(["true"], cwd=runner.work)
    return runner.key.sign_statement(
        verification_statement(assignment(plane, runner, offer), check)
    )


def leaf_indices(plane: ControlPlane) -> list[int]:
    with plane.ctx.read() as conn:
        rows = conn.execute(
            select(ledger_entries.c.leaf_index).order_by(ledger_entries.c.leaf_index)
        ).all()
    return [row.leaf_index for row in rows]


def recorded_reports(plane: ControlPlane) -> int:
    with plane.ctx.read() as conn:
        return int(conn.execute(select(func.count()).select_from(lease_reports)).scalar() or 0)


def consistent(plane: ControlPlane, *closed: str) -> None:
    """The ledger's leaves are numbered 0..n-1 without gaps, a checkpoint of all of them
    signs, and the bundle of every named (closed) proposal verifies offline."""
    indices = leaf_indices(plane)
    assert indices == list(range(len(indices)))
    assert plane.ledger.checkpoint(len(indices))  # a checkpoint covering every leaf
    for proposal_id in closed:
        report = verify_bundle(plane.ledger.export(proposal_id), plane.ctx.key.public)
        assert report.final_state in ("succeeded", "failed")


@pytest.fixture
def runner(plane: ControlPlane, tokens: Tokens, tmp_path: Path) -> ServiceRunner:
    return ServiceRunner(plane, tokens, tmp_path)


# ---- lease_many -------------------------------------------------------------------------


def test_lease_many_takes_up_to_most_oldest_first_each_with_its_own_capsule(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    made = propose(plane, tokens, 5)
    first = plane.runners.lease_many(runner.principal, KINDS, 3)
    assert [offer["proposal_id"] for offer in first] == made[:3]
    rest = plane.runners.lease_many(runner.principal, KINDS, MAX_LEASES)
    assert [offer["proposal_id"] for offer in rest] == made[3:]
    assert plane.runners.lease_many(runner.principal, KINDS, MAX_LEASES) == []

    offers = first + rest
    tokens_given = [offer["fencing_token"] for offer in offers]
    assert tokens_given == sorted(set(tokens_given))  # distinct, increasing in age order
    assert len({offer["lease_id"] for offer in offers}) == 5
    for offer in offers:
        proposal_id = offer["proposal_id"]
        assert plane.proposals.get(None, proposal_id)["state"] == "executing"
        assert stages(plane, proposal_id).count("capsule") == 1
        capsule = statement_of(plane.ledger.export(proposal_id)["entries"][-1]["envelope"])
        assert capsule.stage is Stage.CAPSULE
        assert capsule.predicate["lease_id"] == offer["lease_id"]
        assert capsule.predicate["fencing_token"] == offer["fencing_token"]
        assert capsule.predicate["capsule_digest"] == capsule_digest(offer["capsule"])
    consistent(plane)


def test_lease_many_with_nothing_leasable_takes_nothing_and_writes_nothing(
    plane: ControlPlane, runner: ServiceRunner
) -> None:
    before = plane.ledger.size()
    assert plane.runners.lease_many(runner.principal, KINDS, 4) == []
    assert plane.runners.lease(runner.principal, KINDS) is None
    assert plane.ledger.size() == before


def test_an_empty_poll_never_waits_for_the_write_lock(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    """While a writer holds the lock, a poll that finds nothing answers at once; one that
    finds work waits its turn and then takes it."""
    with ThreadPoolExecutor(1) as pool:
        with plane.ctx.write():  # a long write transaction in this thread
            idle = pool.submit(plane.runners.lease_many, runner.principal, KINDS, 4)
            assert idle.result(timeout=30) == []
        (proposal_id,) = propose(plane, tokens, 1)
        with plane.ctx.write():
            busy = pool.submit(plane.runners.lease_many, runner.principal, KINDS, 4)
            done, _ = wait([busy], timeout=0.2)
            assert not done  # it needs the lock to lease
        assert [offer["proposal_id"] for offer in busy.result(timeout=30)] == [proposal_id]


@pytest.mark.parametrize("most", [0, 33, -1, "2", True, 1.5])
def test_a_bad_max_is_refused_naming_max(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner, most: Any
) -> None:
    (proposal_id,) = propose(plane, tokens, 1)
    with pytest.raises(InputError) as refused:
        plane.runners.lease_many(runner.principal, KINDS, most)
    assert refused.value.field == "max"
    assert plane.proposals.get(None, proposal_id)["state"] == "authorized"  # nothing leased


def test_lease_count_defaults_to_one_and_allows_up_to_the_limit() -> None:
    assert lease_count(None) == 1
    assert lease_count(1) == 1
    assert lease_count(MAX_LEASES) == MAX_LEASES


def test_only_runners_lease_or_report(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    with pytest.raises(Forbidden):
        plane.runners.lease_many(agent, KINDS, 2)
    with pytest.raises(Forbidden):
        plane.runners.report_many(agent, [{"lease_id": "x"}])


# ---- report_many ------------------------------------------------------------------------


def test_a_batch_of_execution_and_verification_closes_the_proposal(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    (proposal_id,) = propose(plane, tokens, 1)
    (offer,) = plane.runners.lease_many(runner.principal, KINDS, 2)
    batch = [
        item(offer, "execution", executed(runner, plane, offer)),
        item(offer, "verification", verified(runner, plane, offer)),
    ]
    assert plane.runners.report_many(runner.principal, batch) == [
        {"state": "verifying"},
        {"state": "succeeded"},
    ]
    assert plane.proposals.get(None, proposal_id)["state"] == "succeeded"
    assert stages(plane, proposal_id)[-4:] == ["capsule", "execution", "verification", "closure"]
    report = verify_bundle(plane.ledger.export(proposal_id), plane.ctx.key.public)
    assert report.final_state == "succeeded"
    assert report.runner_keyids == (runner.key.public.keyid,)
    consistent(plane, proposal_id)


def _wrong_token(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    good = executed(runner, plane, offer)
    return item(offer, "execution", good, fencing_token=offer["fencing_token"] + 100)


def _unknown_lease(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    return item(offer, "execution", executed(runner, plane, offer), lease_id="no-such-lease")


def _bad_signature(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    forged = executed(runner, plane, offer, key=SigningKey.generate())
    return item(offer, "execution", forged)


def _not_an_object(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    return ["lease_id", offer["lease_id"]]


def _bad_stage(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    return item(offer, "execution", executed(runner, plane, offer), stage="capsule")


def _bad_sequence(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    return item(offer, "execution", executed(runner, plane, offer), sequence=0)


def _verification_first(runner: ServiceRunner, plane: ControlPlane, offer: dict[str, Any]) -> Any:
    return item(offer, "verification", verified(runner, plane, offer))


REFUSALS = {
    "wrong fencing token": (_wrong_token, Conflict, "stale fencing token"),
    "unknown lease": (_unknown_lease, NotFound, "no-such-lease"),
    "bad signature": (_bad_signature, InputError, "envelope"),
    "not an object": (_not_an_object, InputError, "object"),
    "bad stage": (_bad_stage, InputError, "execution or verification"),
    "bad sequence": (_bad_sequence, InputError, "positive integer"),
    "verification before execution": (_verification_first, IllegalTransition, "executing"),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_report_in_the_middle_changes_nothing_and_the_rest_are_recorded(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner, refusal: str
) -> None:
    made = propose(plane, tokens, 3)
    before, middle, after = plane.runners.lease_many(runner.principal, KINDS, 3)
    make_bad, error, words = REFUSALS[refusal]
    batch = [
        item(before, "execution", executed(runner, plane, before)),
        make_bad(runner, plane, middle),
        # the last closes its proposal: a control-plane closure leaf after the refused item
        item(after, "execution", executed(runner, plane, after)),
        item(after, "verification", verified(runner, plane, after)),
    ]
    size = plane.ledger.size()
    answers = plane.runners.report_many(runner.principal, batch)

    assert answers[0] == {"state": "verifying"}
    assert set(answers[1]) == {"error"}
    assert isinstance(answers[1]["error"], error)
    assert words in str(answers[1]["error"])
    assert answers[2:] == [{"state": "verifying"}, {"state": "succeeded"}]
    # recorded: before's execution; after's execution, verification and closure; nothing else
    assert plane.ledger.size() == size + 4
    assert recorded_reports(plane) == 3
    assert plane.proposals.get(None, made[1])["state"] == "executing"
    assert "execution" not in stages(plane, made[1])
    consistent(plane, made[2])

    # the refused report's lease is untouched: its real reports are recorded afterwards
    fixed = [
        item(middle, "execution", executed(runner, plane, middle)),
        item(middle, "verification", verified(runner, plane, middle)),
    ]
    answers = plane.runners.report_many(runner.principal, fixed)
    assert answers == [{"state": "verifying"}, {"state": "succeeded"}]
    consistent(plane, made[1], made[2])


def test_a_batch_resent_answers_the_same_and_records_nothing_new(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    made = propose(plane, tokens, 2)
    first, second = plane.runners.lease_many(runner.principal, KINDS, 2)
    batch = [
        item(first, "execution", executed(runner, plane, first)),
        item(first, "verification", verified(runner, plane, first)),
        item(second, "execution", executed(runner, plane, second), fencing_token=-1),
        item(second, "execution", executed(runner, plane, second)),
    ]
    answers = plane.runners.report_many(runner.principal, batch)
    assert answers[:2] == [{"state": "verifying"}, {"state": "succeeded"}]
    assert isinstance(answers[2]["error"], Conflict)
    assert answers[3] == {"state": "verifying"}
    size, reports = plane.ledger.size(), recorded_reports(plane)

    again = plane.runners.report_many(runner.principal, batch)  # the answer was lost
    assert [a.get("state") for a in again] == [a.get("state") for a in answers]
    assert type(again[2]["error"]) is type(answers[2]["error"])
    assert (plane.ledger.size(), recorded_reports(plane)) == (size, reports)
    assert stages(plane, made[0]).count("execution") == 1
    assert stages(plane, made[0]).count("verification") == 1
    assert stages(plane, made[1]).count("execution") == 1
    consistent(plane, made[0])


def test_the_same_report_twice_in_one_batch_is_recorded_once(
    plane: ControlPlane, tokens: Tokens, runner: ServiceRunner
) -> None:
    (proposal_id,) = propose(plane, tokens, 1)
    (offer,) = plane.runners.lease_many(runner.principal, KINDS, 1)
    report = item(offer, "execution", executed(runner, plane, offer))
    other = item(offer, "execution", executed(runner, plane, offer))  # another run, same number
    answers = plane.runners.report_many(runner.principal, [report, report, other])
    assert answers[:2] == [{"state": "verifying"}, {"state": "verifying"}]
    assert isinstance(answers[2]["error"], Conflict)
    assert "already recorded" in str(answers[2]["error"])
    assert stages(plane, proposal_id).count("execution") == 1
    assert recorded_reports(plane) == 1
    consistent(plane)


@pytest.mark.parametrize(
    ("reports", "words"),
    [
        (None, "non-empty list"),
        ({"lease_id": "x"}, "non-empty list"),
        ([], "non-empty list"),
        ([{"lease_id": "x"}] * (MAX_REPORTS + 1), f"at most {MAX_REPORTS}"),
    ],
)
def test_a_bad_batch_is_refused_as_a_whole_naming_reports(
    plane: ControlPlane, runner: ServiceRunner, reports: Any, words: str
) -> None:
    with pytest.raises(InputError) as refused:
        plane.runners.report_many(runner.principal, reports)
    assert refused.value.field == "reports"
    assert words in str(refused.value)
