"""Bad input at every endpoint: a clear problem+json naming the problem, and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Server, Tokens, World

GOOD = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "production",
    "intent": "bad input",
    "parameters": {"argv": ["true"]},
}


@pytest.fixture
def server(world: World) -> Server:
    return world.server


@pytest.fixture
def tokens(world: World) -> Tokens:
    return world.tokens


@pytest.fixture
def clients(server: Server, tokens: Tokens) -> Iterator[dict[str, httpx.Client]]:
    made = {
        name: httpx.Client(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        for name, token in [
            ("agent", tokens.agent),
            ("human", tokens.human),
            ("runner", tokens.runner),
            ("bad", "plc_not-a-real-token"),
        ]
    }
    yield made
    for c in made.values():
        c.close()


def footprint(c: httpx.Client) -> tuple[int, int]:
    """(ledger size, number of proposals): what a refused request must leave unchanged."""
    size = c.get("/healthz").json()["ledger_size"]
    return size, len(c.get("/v1/proposals", params={"limit": 1000}).json()["items"])


def expect_problem(response: httpx.Response, status: int, words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert words in problem["detail"], problem
    return problem


def with_(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


PROPOSE_CASES = [
    (b"{not json", 400, "not valid JSON", "body"),
    (b"[1, 2]", 422, "must be a JSON object", "body"),
    (with_(kind="teleport"), 422, "unknown action kind 'teleport'", "kind"),
    (with_(targets=None), 422, "is required", "targets"),
    (with_(targets=[]), 422, "at least one target", "targets"),
    (with_(targets=["ok", 3]), 422, "non-empty string", "targets[1]"),
    (with_(environment="Prod Env"), 422, "lowercase", "environment"),
    (with_(intent=""), 422, "is required", "intent"),
    (with_(parameters={"argv": "rm -rf /"}), 422, "non-empty list", "parameters.argv"),
    (with_(parameters={"argv": ["x"], "timeout": -1}), 422, "more than 0", "parameters.timeout"),
    (with_(verify={"argv": []}), 422, "non-empty list", "verify.argv"),
    (with_(colour="blue"), 422, "is not a proposal field", "colour"),
]


@pytest.mark.parametrize(("body", "status", "words", "field"), PROPOSE_CASES)
def test_propose_refuses_bad_bodies(
    clients: dict[str, httpx.Client], body: Any, status: int, words: str, field: str
) -> None:
    before = footprint(clients["human"])
    if isinstance(body, bytes):
        response = clients["agent"].post(
            "/v1/proposals", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = clients["agent"].post("/v1/proposals", json=body)
    problem = expect_problem(response, status, words)
    assert problem["field"] == field
    assert footprint(clients["human"]) == before


def test_oversized_body_is_413_and_nothing_is_written(clients: dict[str, httpx.Client]) -> None:
    before = footprint(clients["human"])
    big = with_(parameters={"argv": ["echo", "x" * (1024 * 1024)]})
    expect_problem(clients["agent"].post("/v1/proposals", json=big), 413, "limited to")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"kind": "shell", "intent": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    streamed = clients["agent"].post(
        "/v1/proposals", content=chunks(), headers={"content-type": "application/json"}
    )
    expect_problem(streamed, 413, "limited to")
    assert footprint(clients["human"]) == before


def test_bad_and_missing_tokens(server: Server, clients: dict[str, httpx.Client]) -> None:
    before = footprint(clients["human"])
    expect_problem(clients["bad"].post("/v1/proposals", json=GOOD), 401, "matches no principal")
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.post("/v1/proposals", json=GOOD)
        expect_problem(response, 401, "token is required")
        assert response.headers["www-authenticate"] == "Bearer"
        basic = anonymous.get("/v1/proposals", headers={"Authorization": "Basic Zm9vOmJhcg=="})
        expect_problem(basic, 401, "token is required")
    assert footprint(clients["human"]) == before


def test_wrong_roles(clients: dict[str, httpx.Client]) -> None:
    proposal = clients["agent"].post("/v1/proposals", json=GOOD).json()
    before = footprint(clients["human"])
    # The permission table refuses before the services are asked (403 not-permitted).
    expect_problem(clients["human"].post("/v1/proposals", json=GOOD), 403, "this needs agent")
    expect_problem(
        clients["agent"].post(f"/v1/proposals/{proposal['id']}/approve"),
        403,
        "this needs approver",
    )
    expect_problem(
        clients["runner"].post(f"/v1/proposals/{proposal['id']}/deny", json={"reason": "x"}),
        403,
        "this needs approver",
    )
    expect_problem(
        clients["human"].post("/v1/runners/lease", json={"kinds": ["shell"]}),
        403,
        "this needs runner",
    )
    assert footprint(clients["human"]) == before


def test_settled_unknown_and_incomplete_votes(clients: dict[str, httpx.Client]) -> None:
    human = clients["human"]
    proposal = clients["agent"].post("/v1/proposals", json=GOOD).json()
    denied = human.post(f"/v1/proposals/{proposal['id']}/deny", json={"reason": "not today"})
    assert denied.status_code == 200 and denied.json()["state"] == "denied"
    before = footprint(human)
    problem = expect_problem(
        human.post(f"/v1/proposals/{proposal['id']}/approve"),
        409,
        "cannot approve a proposal in state denied",
    )
    assert problem["state"] == "denied" and problem["attempt"] == "approve"
    expect_problem(human.post("/v1/proposals/NOPE/approve"), 404, "no proposal 'NOPE'")
    expect_problem(human.get("/v1/proposals/NOPE"), 404, "no proposal 'NOPE'")
    expect_problem(human.get("/v1/proposals/NOPE/evidence"), 404, "no proposal 'NOPE'")
    fresh = clients["agent"].post("/v1/proposals", json=GOOD).json()
    before = footprint(human)
    expect_problem(
        human.post(f"/v1/proposals/{fresh['id']}/deny", json={}), 422, "reason: is required"
    )
    expect_problem(
        human.post(f"/v1/proposals/{fresh['id']}/approve", json={"digest": "0" * 64}),
        409,
        "the vote is for digest",
    )
    expect_problem(
        human.post(
            f"/v1/proposals/{fresh['id']}/approve",
            content=b"{oops",
            headers={"content-type": "application/json"},
        ),
        400,
        "not valid JSON",
    )
    assert footprint(human) == before


def test_query_and_runner_inputs(clients: dict[str, httpx.Client]) -> None:
    human, runner = clients["human"], clients["runner"]
    clients["agent"].post("/v1/proposals", json=GOOD)
    before = footprint(human)
    expect_problem(human.get("/v1/proposals", params={"state": "melted"}), 422, "unknown state")
    expect_problem(human.get("/v1/proposals", params={"limit": 0}), 422, "limit")
    expect_problem(
        human.get("/v1/ledger/proofs/inclusion", params={"leaf_index": "x"}), 422, "leaf_index"
    )
    expect_problem(
        human.get("/v1/ledger/proofs/inclusion", params={"leaf_index": 10**6}), 422, "leaf_index"
    )
    expect_problem(
        human.get("/v1/ledger/proofs/consistency", params={"first": 10**6}),
        422,
        "first: must be between 1 and",
    )
    expect_problem(
        runner.post("/v1/runners/register", json={"public_key": "nope", "kinds": ["shell"]}),
        422,
        "public_key",
    )
    expect_problem(
        runner.post("/v1/runners/register", json={"public_key": "A" * 43 + "=", "kinds": ["warp"]}),
        422,
        "kinds: names no action kind this control plane knows",
    )
    expect_problem(runner.post("/v1/runners/lease", json={"kinds": []}), 422, "kinds")
    expect_problem(
        runner.post("/v1/runners/leases/NOPE/heartbeat", json={"fencing_token": "1"}),
        422,
        "fencing_token",
    )
    assert footprint(human) == before


def test_idempotency_key(clients: dict[str, httpx.Client]) -> None:
    agent, human = clients["agent"], clients["human"]
    first = agent.post("/v1/proposals", json=GOOD, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    before = footprint(human)
    again = agent.post("/v1/proposals", json=GOOD, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = agent.post(
        "/v1/proposals", json=with_(intent="something else"), headers={"Idempotency-Key": "k1"}
    )
    expect_problem(other, 409, "with other content")
    assert footprint(human) == before
