"""The input document: every field, plain JSON, and the checks on what goes in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from placet.domain.principals import Principal, PrincipalKind
from placet.domain.proposal import parse_proposal
from placet.policy import PolicyError, build_input, rfc3339

AGENT = Principal(
    id="agt_1",
    name="deploy-bot",
    kind=PrincipalKind.AGENT,
    owner="alice",
    teams=("payments", "sre"),
    roles=("deployer",),
)
NOW = datetime(2026, 11, 25, 22, 40, 1, 123456, tzinfo=UTC)
BODY = {
    "kind": "shell",
    "targets": ["service:checkout", "db:orders"],
    "parameters": {"argv": ["echo", "hi"], "timeout": 5},
    "environment": "production",
    "intent": "say hi",
    "verify": {"argv": ["true"]},
    "scope": ["service:checkout"],
}
ASSESSMENT = {
    "graph_version": "g-7",
    "targets": [{"id": "service:checkout", "criticality": "high"}],
    "blast_radius": {"count": 2, "nodes": ["service:checkout", "db:orders"]},
    "transitions": [{"from": "proposed", "to": "assessed"}],
    "at": "2026-11-25T22:40:01.000Z",
}


def test_every_field_of_the_document() -> None:
    content = parse_proposal(BODY, AGENT.id)
    document = build_input(
        proposal_id="prp_1", content=content, agent=AGENT, assessment=ASSESSMENT, now=NOW
    )
    assert document == {
        "proposal": {
            "id": "prp_1",
            "digest": content.digest,
            "kind": "shell",
            "targets": ["service:checkout", "db:orders"],
            "parameters": {"argv": ["echo", "hi"], "timeout": 5},
            "environment": "production",
            "intent": "say hi",
            "scope": ["service:checkout"],
            "verify": {"argv": ["true"]},
            "agent": {
                "id": "agt_1",
                "name": "deploy-bot",
                "owner": "alice",
                "teams": ["payments", "sre"],
                "roles": ["deployer"],
            },
        },
        "assessment": {
            "graph_version": "g-7",
            "targets": [{"id": "service:checkout", "criticality": "high"}],
            "blast_radius": {"count": 2, "nodes": ["service:checkout", "db:orders"]},
        },
        "now": "2026-11-25T22:40:01.123Z",
    }
    assert json.loads(json.dumps(document)) == document


def test_the_document_does_not_share_mutable_state_with_the_proposal() -> None:
    content = parse_proposal(BODY, AGENT.id)
    document = build_input(proposal_id="p", content=content, agent=AGENT, now=NOW)
    document["proposal"]["parameters"]["argv"].append("mutated")
    assert content.parameters["argv"] == ["echo", "hi"]


def test_optional_parts_are_null_or_empty() -> None:
    body = {k: v for k, v in BODY.items() if k not in ("verify", "scope")}
    agent = Principal(id="agt_2", name="lonely", kind=PrincipalKind.AGENT)
    document = build_input(
        proposal_id="p", content=parse_proposal(body, agent.id), agent=agent, now=NOW
    )
    assert document["proposal"]["verify"] is None
    assert document["proposal"]["scope"] == []
    assert document["proposal"]["agent"] == {
        "id": "agt_2",
        "name": "lonely",
        "owner": None,
        "teams": [],
        "roles": [],
    }
    assert document["assessment"] == {"graph_version": None, "targets": [], "blast_radius": {}}


def test_now_defaults_to_the_current_time() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    document = build_input(proposal_id="p", content=parse_proposal(BODY, AGENT.id), agent=AGENT)
    stamp = datetime.fromisoformat(document["now"].replace("Z", "+00:00"))
    assert before <= stamp <= datetime.now(UTC)
    assert document["now"].endswith("Z")


def test_rfc3339_converts_to_utc_with_milliseconds() -> None:
    east = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=east)) == "2026-01-02T01:04:05.006Z"
    with pytest.raises(PolicyError, match="timezone-aware"):
        rfc3339(datetime(2026, 1, 2, 3, 4, 5))


def test_the_agent_must_be_the_proposer() -> None:
    other = Principal(id="agt_other", name="other", kind=PrincipalKind.AGENT)
    with pytest.raises(PolicyError, match="names agent 'agt_1', not 'agt_other'"):
        build_input(proposal_id="p", content=parse_proposal(BODY, AGENT.id), agent=other)


@pytest.mark.parametrize(
    ("assessment", "problem"),
    [
        ({"graph_version": 7}, "graph_version must be a string or null"),
        ({"targets": "service:a"}, "targets must be a list"),
        ({"blast_radius": ["a"]}, "blast_radius must be an object"),
        ({"blast_radius": {"when": datetime(2026, 1, 1)}}, r"blast_radius\.when: a datetime"),
        ({"targets": [{1: "x"}]}, "object keys must be strings"),
    ],
)
def test_a_malformed_assessment_is_refused(assessment: dict[str, object], problem: str) -> None:
    with pytest.raises(PolicyError, match=problem):
        build_input(
            proposal_id="p",
            content=parse_proposal(BODY, AGENT.id),
            agent=AGENT,
            assessment=assessment,
            now=NOW,
        )
