"""The input document: every field, plain JSON, and the checks on what goes in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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
GRAPH_VERSION = {"id": "gv_7", "digest": "ab" * 32}
CHECKOUT = {
    "id": "service:checkout",
    "known": True,
    "kind": "service",
    "owner": "team:payments",
    "tags": ["revenue-path", "regulated-data:pci"],
    "reach": {"reachable": True, "entry_point": "service:frontend", "path": ["a", "b"]},
}
RADIUS: dict[str, Any] = {
    "count": 2,
    "nodes": [
        {"id": "service:checkout", "kind": "service", "distance": 0, "path": ["a"]},
        {"id": "service:frontend", "kind": "service", "distance": 1, "path": ["a", "b"]},
    ],
    "tags": ["internet-facing", "revenue-path"],
    "owners": ["team:payments"],
    "data_classes": ["pci"],
    "revenue_path": True,
}
ASSESSMENT = {
    "graph_version": GRAPH_VERSION,
    "targets": [CHECKOUT, {"id": "db:orders", "known": False}],
    "unknown_targets": ["db:orders"],
    "blast_radius": RADIUS,
    "internet_reachable": ["service:checkout"],
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
            "graph_version": GRAPH_VERSION,
            "targets": [CHECKOUT, {"id": "db:orders", "known": False}],
            "unknown_targets": ["db:orders"],
            "blast_radius": RADIUS,
            "internet_reachable": ["service:checkout"],
        },
        "now": "2026-11-25T22:40:01.123Z",
    }
    assert json.loads(json.dumps(document)) == document


def test_the_assessment_is_copied_not_shared() -> None:
    document = build_input(
        proposal_id="p",
        content=parse_proposal(BODY, AGENT.id),
        agent=AGENT,
        assessment=ASSESSMENT,
        now=NOW,
    )
    assessment = document["assessment"]
    assessment["graph_version"]["id"] = "changed"
    assessment["targets"][0]["reach"]["path"].append("c")
    assessment["unknown_targets"].append("x")
    assessment["blast_radius"]["data_classes"].append("phi")
    assessment["blast_radius"]["nodes"][1]["path"].append("c")
    assessment["internet_reachable"].clear()
    assert GRAPH_VERSION["id"] == "gv_7"
    assert CHECKOUT["reach"] == {
        "reachable": True,
        "entry_point": "service:frontend",
        "path": ["a", "b"],
    }
    assert ASSESSMENT["unknown_targets"] == ["db:orders"]
    assert RADIUS["data_classes"] == ["pci"]
    assert RADIUS["nodes"][1]["path"] == ["a", "b"]
    assert ASSESSMENT["internet_reachable"] == ["service:checkout"]


def test_no_graph_reads_as_a_null_version() -> None:
    assessment = {
        "graph_version": None,
        "targets": [{"id": "service:checkout", "known": False}],
        "unknown_targets": ["service:checkout"],
    }
    document = build_input(
        proposal_id="p",
        content=parse_proposal(BODY, AGENT.id),
        agent=AGENT,
        assessment=assessment,
        now=NOW,
    )
    assert document["assessment"] == {
        "graph_version": None,
        "targets": [{"id": "service:checkout", "known": False}],
        "unknown_targets": ["service:checkout"],
        "blast_radius": {},
        "internet_reachable": [],
    }


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
    assert document["assessment"] == {
        "graph_version": None,
        "targets": [],
        "unknown_targets": [],
        "blast_radius": {},
        "internet_reachable": [],
    }


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
        ({"graph_version": 7}, "graph_version must be an object, a string or null"),
        ({"graph_version": {"id": datetime(2026, 1, 1)}}, r"graph_version\.id: a datetime"),
        ({"targets": "service:a"}, "targets must be a list"),
        ({"targets": [{1: "x"}]}, "object keys must be strings"),
        ({"unknown_targets": "service:a"}, "unknown_targets must be a list"),
        ({"unknown_targets": ["a", 7]}, r"unknown_targets\[1\] must be a string, not int"),
        ({"internet_reachable": {"a": 1}}, "internet_reachable must be a list"),
        ({"internet_reachable": [None]}, r"internet_reachable\[0\] must be a string"),
        ({"blast_radius": ["a"]}, "blast_radius must be an object"),
        ({"blast_radius": {"when": datetime(2026, 1, 1)}}, r"blast_radius\.when: a datetime"),
        # A mistyped field the default policy reads would make its rule silently not apply.
        ({"blast_radius": {"count": 26.0}}, r"blast_radius\.count must be a whole number"),
        ({"blast_radius": {"count": "26"}}, r"blast_radius\.count must be a whole number"),
        ({"blast_radius": {"count": True}}, r"blast_radius\.count must be a whole number"),
        ({"blast_radius": {"count": -1}}, r"blast_radius\.count must be a whole number"),
        ({"blast_radius": {"revenue_path": "true"}}, r"revenue_path must be true or false"),
        ({"blast_radius": {"revenue_path": 1}}, r"revenue_path must be true or false"),
        ({"blast_radius": {"data_classes": "pci"}}, r"data_classes must be a list"),
        ({"blast_radius": {"data_classes": ["pci", 3]}}, r"data_classes\[1\] must be a string"),
        ({"blast_radius": {"nodes": "a"}}, r"blast_radius\.nodes must be a list"),
        ({"blast_radius": {"nodes": {"id": "a"}}}, r"blast_radius\.nodes must be a list"),
        ({"blast_radius": {"tags": [1]}}, r"blast_radius\.tags\[0\] must be a string"),
        ({"blast_radius": {"owners": [["a"]]}}, r"blast_radius\.owners\[0\] must be a string"),
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
