"""Policy bundles in the store: push, history, rollback, shadow decisions, what-if."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from placet.domain.errors import Conflict, InputError, NotFound
from placet.policy.bundle import default_bundle
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane
from placet.store.tables import ledger_entries
from tests.conftest import Tokens

STAGING = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "test",
    "parameters": {"argv": ["true"]},
}
ALLOW_ALL = b"""package placet
import rego.v1
decision := {"outcome": "allow", "reasons": ["everything is allowed here"]}
"""
DENY_ALL = b"""package placet
import rego.v1
decision := {"outcome": "deny", "reasons": ["nothing is allowed here"]}
"""
TWO_FROM_SRE = b"""package placet
import rego.v1
decision := {"outcome": "require_approval", "reasons": ["two from sre"],
             "min_approvals": 2, "from": ["team:sre"]}
"""
BROKEN_AT_RUNTIME = b"""package placet
import rego.v1
decision := {"outcome": "allow", "reasons": [sprintf("%d", [1 / 0])]}
"""


def test_push_puts_a_bundle_in_force_and_keeps_history(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    before = plane.policies.heads()
    assert before["enforcing"]["packaged"] is True
    assert before["enforcing"]["digest"] == default_bundle().digest
    pushed = plane.policies.push({"p.rego": DENY_ALL}, name="strict", author="ada")
    assert plane.policies.heads()["enforcing"]["id"] == pushed["id"]
    view, _ = plane.proposals.propose(agent, STAGING)
    assert view["state"] == "denied"
    assert view["decision"]["policy_digest"] == pushed["digest"]
    history = plane.policies.history()
    assert [(h["action"], h["author"], h["bundle_id"]) for h in history] == [
        ("push", "ada", pushed["id"])
    ]
    assert plane.policies.source(pushed["id"])["files"] == {"p.rego": DENY_ALL.decode()}


def test_rollback_walks_back_to_the_packaged_default(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    first = plane.policies.push({"p.rego": DENY_ALL}, name="one", author="ada")
    second = plane.policies.push({"p.rego": ALLOW_ALL}, name="two", author="ada")
    assert plane.proposals.propose(agent, STAGING)[0]["state"] == "authorized"
    back = plane.policies.rollback("ada")
    assert back["enforcing"] == first["id"]
    assert plane.proposals.propose(agent, STAGING)[0]["state"] == "denied"
    assert plane.policies.rollback("ada")["enforcing"] is None
    assert plane.policies.heads()["enforcing"]["packaged"] is True
    with pytest.raises(Conflict, match="packaged default"):
        plane.policies.rollback("ada")
    again = plane.policies.rollback("ada", to=second["digest"][:12])
    assert again["enforcing"] == second["id"]
    actions = [h["action"] for h in plane.policies.history()]
    assert actions == ["rollback", "rollback", "rollback", "push", "push"]


def test_a_bundle_that_does_not_compile_is_refused_and_nothing_changes(
    plane: ControlPlane,
) -> None:
    with pytest.raises(InputError, match="bundle"):
        plane.policies.push({"p.rego": b"package placet\ndecision := {"}, name="x", author="ada")
    with pytest.raises(InputError, match="files"):
        plane.policies.push({"../p.rego": ALLOW_ALL}, name="x", author="ada")
    assert plane.policies.history() == []
    with pytest.raises(NotFound):
        plane.policies.rollback("ada", to="ffff")


def test_shadow_bundles_record_differences_and_never_change_an_outcome(
    plane: ControlPlane, tokens: Tokens
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    shadow = plane.policies.push({"p.rego": DENY_ALL}, name="would-deny", author="ada", shadow=True)
    allowed, _ = plane.proposals.propose(agent, STAGING)
    gated, _ = plane.proposals.propose(agent, {**STAGING, "environment": "production"})
    assert allowed["state"] == "authorized"  # the packaged default still decides
    assert gated["state"] == "pending_approval"
    report = plane.policies.shadow_report()
    assert report["bundle"]["id"] == shadow["id"]
    assert report["evaluated"] == 2 and report["differing"] == 2
    assert {i["enforced"] for i in report["items"]} == {"allow", "require_approval"}
    assert {i["shadow"] for i in report["items"]} == {"deny"}
    # The decision statement carries the shadow's would-be outcome as evidence.
    statements = [
        json.loads(base64.b64decode(e["envelope"]["payload"]))
        for e in plane.ledger.export(allowed["id"])["entries"]
    ]
    (decision,) = [s for s in statements if s["predicateType"].endswith("/decision/v1")]
    assert decision["predicate"]["outcome"] == "allow"
    assert decision["predicate"]["shadow"]["outcome"] == "deny"
    assert decision["predicate"]["shadow"]["differs"] is True
    plane.policies.clear_shadow("ada")
    plane.proposals.propose(agent, STAGING)
    assert plane.policies.shadow_report()["evaluated"] == 2  # no longer evaluated


def test_a_failing_shadow_bundle_is_recorded_and_harmless(
    plane: ControlPlane, tokens: Tokens
) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    plane.policies.push({"p.rego": BROKEN_AT_RUNTIME}, name="broken", author="ada", shadow=True)
    view, _ = plane.proposals.propose(agent, STAGING)
    assert view["state"] == "authorized"
    report = plane.policies.shadow_report()
    assert report["items"][0]["shadow"] is None
    assert report["items"][0]["error"]


def test_what_if_never_records_anything(plane: ControlPlane, tokens: Tokens) -> None:
    from placet.policy.input import sample_input

    with plane.ctx.read() as conn:
        before = len(conn.execute(select(ledger_entries.c.leaf_index)).all())
    answer = plane.policies.evaluate(sample_input(environment="production"))
    assert answer["outcome"] == "require_approval"
    assert answer["bundle"]["digest"] == default_bundle().digest
    pushed = plane.policies.push({"p.rego": TWO_FROM_SRE}, name="sre", author="ada")
    answer = plane.policies.evaluate(sample_input())
    assert answer["decision"]["approvals"]["min_approvals"] == 2
    assert answer["decision"]["approvals"]["from"] == ["team:sre"]
    assert plane.policies.evaluate(sample_input(), pushed["id"])["outcome"] == "require_approval"
    with pytest.raises(NotFound):
        plane.policies.evaluate(sample_input(), "shadow")
    with plane.ctx.read() as conn:
        assert len(conn.execute(select(ledger_entries.c.leaf_index)).all()) == before


def test_a_configured_policy_dir_is_pushed_once(data_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "mine"
    bundle.mkdir()
    (bundle / "p.rego").write_bytes(ALLOW_ALL)
    settings = load_settings(data_dir, policy_dir=bundle)
    for _ in range(2):
        cp = ControlPlane.open(settings)
        try:
            heads = cp.policies.heads()
            history = cp.policies.history()
        finally:
            cp.close()
    assert heads["enforcing"]["name"] == "mine"
    assert [h["author"] for h in history] == ["policy_dir setting"]
