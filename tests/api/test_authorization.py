"""Every endpoint x human / agent / runner / anonymous -> the expected status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Server, Tokens, World


@pytest.fixture
def server(world: World) -> Server:
    return world.server


@pytest.fixture
def tokens(world: World) -> Tokens:
    return world.tokens


SHELL = {
    "kind": "shell",
    "targets": ["svc"],
    "environment": "production",
    "intent": "matrix",
    "parameters": {"argv": ["true"]},
}


def client(server: Server, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def who(tokens: Tokens, name: str) -> str | None:
    return {
        "human": tokens.human,
        "agent": tokens.agent,
        "runner": tokens.runner,
        "anonymous": None,
    }[name]


def pending(server: Server, tokens: Tokens) -> dict[str, Any]:
    with client(server, tokens.agent) as c:
        r = c.post("/v1/proposals", json=SHELL)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        assert body["state"] == "pending_approval"
        return body


Request = Callable[[httpx.Client, dict[str, Any]], httpx.Response]

CASES: list[tuple[str, Request, dict[str, int]]] = [
    (
        "POST /v1/proposals",
        lambda c, p: c.post("/v1/proposals", json=SHELL),
        {"human": 403, "agent": 201, "runner": 403, "anonymous": 401},
    ),
    (
        "GET /v1/proposals",
        lambda c, p: c.get("/v1/proposals"),
        {"human": 200, "agent": 200, "runner": 403, "anonymous": 401},
    ),
    (
        "GET /v1/proposals/{id}",
        lambda c, p: c.get(f"/v1/proposals/{p['id']}"),
        {"human": 200, "agent": 200, "runner": 403, "anonymous": 401},
    ),
    (
        "POST approve",
        lambda c, p: c.post(f"/v1/proposals/{p['id']}/approve"),
        {"human": 200, "agent": 403, "runner": 403, "anonymous": 401},
    ),
    (
        "POST deny",
        lambda c, p: c.post(f"/v1/proposals/{p['id']}/deny", json={"reason": "no"}),
        {"human": 200, "agent": 403, "runner": 403, "anonymous": 401},
    ),
    (
        "POST cancel",
        lambda c, p: c.post(f"/v1/proposals/{p['id']}/cancel"),
        {"human": 200, "agent": 200, "runner": 403, "anonymous": 401},
    ),
    (
        "GET evidence",
        lambda c, p: c.get(f"/v1/proposals/{p['id']}/evidence"),
        {"human": 200, "agent": 200, "runner": 403, "anonymous": 401},
    ),
    (
        "GET checkpoint",
        lambda c, p: c.get("/v1/ledger/checkpoint"),
        {"human": 200, "agent": 200, "runner": 200, "anonymous": 401},
    ),
    (
        "GET inclusion",
        lambda c, p: c.get("/v1/ledger/proofs/inclusion", params={"leaf_index": 0}),
        {"human": 200, "agent": 200, "runner": 200, "anonymous": 401},
    ),
    (
        "GET consistency",
        lambda c, p: c.get("/v1/ledger/proofs/consistency", params={"first": 1}),
        {"human": 200, "agent": 200, "runner": 200, "anonymous": 401},
    ),
    (
        "GET /v1/keys",
        lambda c, p: c.get("/v1/keys"),
        {"human": 200, "agent": 200, "runner": 200, "anonymous": 401},
    ),
    (
        "POST register",
        lambda c, p: c.post(
            "/v1/runners/register", json={"public_key": "A" * 43 + "=", "kinds": ["shell"]}
        ),
        {"human": 403, "agent": 403, "runner": 200, "anonymous": 401},
    ),
    (
        "POST lease",
        lambda c, p: c.post("/v1/runners/lease", json={"kinds": ["deploy"]}),
        {"human": 403, "agent": 403, "runner": 204, "anonymous": 401},
    ),
    (
        "POST heartbeat",
        lambda c, p: c.post("/v1/runners/leases/NOPE/heartbeat", json={"fencing_token": 1}),
        {"human": 403, "agent": 403, "runner": 404, "anonymous": 401},
    ),
    (
        "POST execution",
        lambda c, p: c.post(
            "/v1/runners/leases/NOPE/execution", json={"fencing_token": 1, "envelope": {}}
        ),
        {"human": 403, "agent": 403, "runner": 404, "anonymous": 401},
    ),
    (
        "POST verification",
        lambda c, p: c.post(
            "/v1/runners/leases/NOPE/verification", json={"fencing_token": 1, "envelope": {}}
        ),
        {"human": 403, "agent": 403, "runner": 404, "anonymous": 401},
    ),
    (
        "GET /healthz",
        lambda c, p: c.get("/healthz"),
        {"human": 200, "agent": 200, "runner": 200, "anonymous": 200},
    ),
    (
        "GET /openapi.json",
        lambda c, p: c.get("/openapi.json"),
        {"human": 200, "agent": 200, "runner": 200, "anonymous": 200},
    ),
]


@pytest.mark.parametrize("principal", ["human", "agent", "runner", "anonymous"])
def test_authorization_matrix(server: Server, tokens: Tokens, principal: str) -> None:
    for name, call, expected in CASES:
        proposal = pending(server, tokens)
        with client(server, who(tokens, principal)) as c:
            response = call(c, proposal)
        assert response.status_code == expected[principal], (name, principal, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["status"] == response.status_code and problem["detail"]


def test_agents_read_only_their_own(server: Server, tokens: Tokens) -> None:
    proposal = pending(server, tokens)
    with client(server, tokens.other_agent) as c:
        assert c.get(f"/v1/proposals/{proposal['id']}").status_code == 404
        assert c.get(f"/v1/proposals/{proposal['id']}/evidence").status_code == 404
        assert c.post(f"/v1/proposals/{proposal['id']}/cancel").status_code == 404
        assert c.get("/v1/proposals").json()["items"] == []


def test_nobody_approves_what_their_agent_made(server: Server, tokens: Tokens) -> None:
    proposal = pending(server, tokens)
    with client(server, tokens.owner) as c:
        response = c.post(f"/v1/proposals/{proposal['id']}/approve")
    assert response.status_code == 403
    assert "owns bot, the agent that proposed this" in response.json()["detail"]
    with client(server, tokens.human) as c:
        assert c.get(f"/v1/proposals/{proposal['id']}").json()["state"] == "pending_approval"
