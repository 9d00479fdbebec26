"""Quorum, eligibility through graph ownership, separation of duties, expiry, escalation and
the notifications they queue, against a real SQLite file with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from placet.domain.errors import Forbidden, IllegalTransition
from placet.domain.principals import Principal
from placet.evidence.verify import verify_bundle
from placet.service.control_plane import ControlPlane
from tests.conftest import Tokens
from tests.service.test_lifecycle_service import stages

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
RESTART_PAYMENTS = {
    "kind": "restart",
    "targets": ["payments"],
    "environment": "production",
    "intent": "roll out the fix",
    "parameters": {},
}
OWNERS_POLICY = b"""package placet
import rego.v1
decision := {
  "outcome": "require_approval",
  "reasons": ["payments changes need two of its owners"],
  "min_approvals": 2,
  "from": [sprintf("owner-of:%s", [t]) | some t in input.proposal.targets],
  "distinct_from": ["proposer-owner"],
  "expires_in": "2h",
  "escalate_to": {"after": "30m", "from": ["team:sre"]},
  "obligations": {"notify": ["pager"]},
}
"""


class Clock:
    """The control plane's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(plane: ControlPlane) -> Clock:
    clock = Clock(T0)
    plane.ctx.clock = clock
    return clock


@pytest.fixture
def people(plane: ControlPlane, tokens: Tokens) -> dict[str, Principal]:
    """pat, quinn and omar on the payments team (omar owns pay-bot); rita on sre."""
    add = plane.principals.add
    add("pat", "human", None, ("payments",), ("approver",))
    add("quinn", "human", None, ("payments",), ("approver",))
    add("omar", "human", None, ("payments",), ("approver",))
    add("pay-bot", "agent", "omar")
    plane.policies.push({"owners.rego": OWNERS_POLICY}, name="owners", author="ada")
    return {
        name: plane.principals.by_name(name)
        for name in ("pat", "quinn", "omar", "rita", "pay-bot", "bot")
    }


def test_two_owners_authorize_and_the_agents_owner_is_refused(
    plane: ControlPlane, clock: Clock, people: dict[str, Principal]
) -> None:
    view, _ = plane.proposals.propose(people["pay-bot"], RESTART_PAYMENTS)
    assert view["state"] == "pending_approval"
    approvals = view["decision"]["approvals"]
    assert approvals["from"] == ["owner-of:payments"]
    assert approvals["eligible"] == ["team:payments"]
    assert view["deadline"] == "2026-11-26T11:00:00.000Z"
    with pytest.raises(Forbidden, match="owns pay-bot"):
        plane.proposals.approve(people["omar"], view["id"])
    with pytest.raises(Forbidden, match="owner-of:payments"):
        plane.proposals.approve(people["rita"], view["id"])  # sre, before escalation
    clock.now = T0 + timedelta(minutes=5)
    one = plane.proposals.approve(people["pat"], view["id"], reason="diff reviewed")
    assert one["state"] == "pending_approval"
    with pytest.raises(IllegalTransition, match="digest"):
        plane.proposals.approve(people["quinn"], view["id"], digest="0" * 64)
    with pytest.raises(IllegalTransition, match="already voted"):
        plane.proposals.approve(people["pat"], view["id"])
    two = plane.proposals.approve(people["quinn"], view["id"])
    assert two["state"] == "authorized"
    assert [(v["by"], v["roles"], v["reason"]) for v in two["votes"]] == [
        ("pat", ["approver"], "diff reviewed"),
        ("quinn", ["approver"], ""),
    ]
    assert two["votes"][0]["at"] == "2026-11-26T09:05:00.000Z"
    assert stages(plane, view["id"])[-3:] == ["decision", "approval", "approval"]


def test_upkeep_escalates_then_expires(
    plane: ControlPlane, clock: Clock, people: dict[str, Principal]
) -> None:
    plane.notifications.add_channel(
        "pager", "webhook", {"url": "http://127.0.0.1:9/hook"}, [], "ada"
    )
    view, _ = plane.proposals.propose(people["pay-bot"], RESTART_PAYMENTS)
    assert plane.proposals.upkeep(T0 + timedelta(minutes=29)) == {
        "expired": 0,
        "escalated": 0,
        "warned": 0,
    }
    counts = plane.proposals.upkeep(T0 + timedelta(minutes=31))
    assert counts["escalated"] == 1
    clock.now = T0 + timedelta(minutes=32)
    after = plane.proposals.approve(people["rita"], view["id"])  # sre is now eligible
    assert after["escalated"] is True and after["state"] == "pending_approval"
    assert plane.proposals.upkeep(T0 + timedelta(minutes=107))["warned"] == 0
    warned = plane.proposals.upkeep(T0 + timedelta(minutes=109))
    assert warned["warned"] == 1
    assert plane.proposals.upkeep(T0 + timedelta(minutes=110))["warned"] == 1  # queued once
    assert plane.proposals.upkeep(T0 + timedelta(hours=2))["expired"] == 1
    final = plane.proposals.get(None, view["id"])
    assert final["state"] == "expired"
    clock.now = T0 + timedelta(hours=2, minutes=1)
    with pytest.raises(IllegalTransition, match="expired"):
        plane.proposals.approve(people["pat"], view["id"])
    events = sorted(n["event"] for n in plane.notifications.list())
    assert events == [
        "approval.escalated",
        "approval.expiring",
        "approval.requested",
        "proposal.expired",
    ]


def test_a_late_vote_records_the_expiry_and_is_refused(
    plane: ControlPlane, clock: Clock, people: dict[str, Principal]
) -> None:
    view, _ = plane.proposals.propose(people["pay-bot"], RESTART_PAYMENTS)
    clock.now = T0 + timedelta(hours=2)
    with pytest.raises(IllegalTransition, match="approval window closed at 2026-11-26T11:00:00Z"):
        plane.proposals.approve(people["pat"], view["id"])
    assert plane.proposals.get(None, view["id"])["state"] == "expired"
    bundle = plane.ledger.export(view["id"])
    assert verify_bundle(bundle, plane.ctx.key.public).final_state == "expired"


def test_nobody_eligible_fails_closed(
    plane: ControlPlane, clock: Clock, people: dict[str, Principal]
) -> None:
    plane.policies.push(
        {
            "p.rego": b"""package placet
import rego.v1
decision := {"outcome": "require_approval", "reasons": ["owners of a node no one owns"],
             "from": ["owner-of:nowhere"]}
"""
        },
        name="nobody",
        author="ada",
    )
    view, _ = plane.proposals.propose(people["pay-bot"], RESTART_PAYMENTS)
    assert view["state"] == "failed"
    assert "no one is eligible" in view["reason"]


def test_one_eligible_denial_ends_it_and_an_ineligible_one_is_refused(
    plane: ControlPlane, clock: Clock, people: dict[str, Principal]
) -> None:
    view, _ = plane.proposals.propose(people["pay-bot"], RESTART_PAYMENTS)
    with pytest.raises(Forbidden):
        plane.proposals.deny(people["rita"], view["id"], "not my service")
    denied = plane.proposals.deny(people["quinn"], view["id"], "wrong fix")
    assert denied["state"] == "denied"
    assert denied["reason"] == "wrong fix"


def test_agents_and_runners_never_vote(plane: ControlPlane, tokens: Tokens) -> None:
    agent = plane.principals.authenticate(tokens.agent)
    runner = plane.principals.authenticate(tokens.runner)
    view, _ = plane.proposals.propose(agent, {**RESTART_PAYMENTS, "targets": ["svc"]})
    assert view["state"] == "pending_approval"
    for who in (agent, runner):
        with pytest.raises(Forbidden, match="never approves"):
            plane.proposals.approve(who, view["id"])
