"""Capability versus permission: what each agent can do against what policy lets it do."""

from __future__ import annotations

from typing import Any

import pytest

from placet.domain.errors import InputError
from placet.service.control_plane import ControlPlane
from tests.conftest import Tokens

SHELL_STAGING = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "staging",
    "intent": "test",
    "parameters": {"argv": ["true"]},
}


def rows(report: dict[str, Any], agent: str) -> dict[tuple[str, tuple[str, ...], str], Any]:
    (entry,) = [a for a in report["agents"] if a["agent"] == agent]
    return {(r["kind"], tuple(r["targets"]), r["environment"]): r for r in entry["capabilities"]}


def test_the_report_weighs_what_agents_did_and_declared_against_policy(
    plane: ControlPlane, tokens: Tokens
) -> None:
    bot = plane.principals.authenticate(tokens.agent)
    plane.proposals.propose(bot, SHELL_STAGING)
    plane.proposals.propose(bot, SHELL_STAGING)
    plane.proposals.propose(
        bot, {**SHELL_STAGING, "kind": "restart", "targets": ["payments"], "parameters": {}}
    )
    plane.principals.set_actions("bot", ["purge_data"], "ada")
    report = plane.reports.permissions()
    assert report["policy"]["name"] == "default"
    assert report["graph_version"]
    found = rows(report, "bot")
    shell = found[("shell", ("svc",), "staging")]
    assert (shell["outcome"], shell["proposals"], shell["source"]) == ("allow", 2, "proposed")
    restart = found[("restart", ("payments",), "staging")]
    assert restart["outcome"] == "allow"
    purge = found[("purge_data", (), "staging")]
    assert (purge["outcome"], purge["source"]) == ("deny", "registered")
    assert "destructive" in purge["reasons"][0]
    (entry,) = [a for a in report["agents"] if a["agent"] == "bot"]
    assert entry["summary"] == {
        "capabilities": 3,
        "autonomous": 2,
        "needs_human": 0,
        "denied": 1,
        "failed": 0,
    }
    # An agent that has done nothing and declared nothing has an empty backlog.
    other = [a for a in report["agents"] if a["agent"] == "other-bot"]
    assert other[0]["capabilities"] == []


def test_the_report_is_evaluated_with_the_policy_in_force_now(
    plane: ControlPlane, tokens: Tokens
) -> None:
    bot = plane.principals.authenticate(tokens.agent)
    plane.proposals.propose(bot, SHELL_STAGING)
    plane.policies.push(
        {
            "p.rego": b"""package placet
import rego.v1
decision := {"outcome": "require_approval", "reasons": ["everything needs sre"],
             "min_approvals": 2, "from": ["team:sre", "owner-of:svc"]}
"""
        },
        name="strict",
        author="ada",
    )
    report = plane.reports.permissions(agent="bot")
    assert [a["agent"] for a in report["agents"]] == ["bot"]
    shell = rows(report, "bot")[("shell", ("svc",), "staging")]
    assert shell["outcome"] == "require_approval"
    assert shell["approvals"] == {
        "min_approvals": 2,
        "from": ["team:sre", "owner-of:svc"],
        "eligible": ["team:sre", "team:platform"],
    }


def test_declared_actions_must_be_known_kinds_on_agents(
    plane: ControlPlane, tokens: Tokens
) -> None:
    with pytest.raises(InputError, match=r"actions\[0\]"):
        plane.principals.set_actions("bot", ["launch_rockets"], "ada")
    with pytest.raises(InputError, match="only agents"):
        plane.principals.set_actions("rita", ["shell"], "ada")
    with pytest.raises(InputError, match="agent"):
        plane.reports.permissions(agent="nobody")
