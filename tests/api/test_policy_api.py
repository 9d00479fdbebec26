"""/v1/policy and /v1/reports over HTTP, and a real proposal's approval request reaching a
signed webhook."""

from __future__ import annotations

import json

import httpx

from placet.approvals.webhook import EVENT_HEADER, verify_signature
from placet.policy.input import sample_input
from tests.approvals.receivers import http_receiver
from tests.conftest import Server, Tokens

DENY_ALL = """package placet
import rego.v1
decision := {"outcome": "deny", "reasons": ["frozen"]}
"""
PRODUCTION = {
    "kind": "restart",
    "targets": ["svc"],
    "environment": "production",
    "intent": "restart after the config change",
    "parameters": {},
}


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_push_eval_shadow_and_rollback(server: Server, tokens: Tokens) -> None:
    with (
        client(server, tokens.admin) as admin,
        client(server, tokens.viewer) as viewer,
        client(server, tokens.agent) as agent,
        client(server, tokens.human) as approver,
    ):
        heads = viewer.get("/v1/policy").json()
        assert heads["enforcing"]["packaged"] is True and heads["shadow"] is None
        refused = viewer.post("/v1/policy/bundles", json={"files": {"p.rego": DENY_ALL}})
        assert refused.status_code == 403
        bad = admin.post("/v1/policy/bundles", json={"files": {"p.rego": "package placet\nx :="}})
        assert bad.status_code in (400, 422)
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "bundle" in bad.json()["detail"]
        shadow = admin.post(
            "/v1/policy/bundles",
            json={"name": "frozen", "files": {"p.rego": DENY_ALL}, "shadow": True},
        )
        assert shadow.status_code == 201, shadow.text
        made = agent.post("/v1/proposals", json={**PRODUCTION, "environment": "staging"})
        assert made.json()["state"] == "authorized"  # the shadow never decides
        differences = admin.get("/v1/policy/shadow").json()
        assert differences["differing"] == 1
        assert differences["items"][0]["shadow"] == "deny"
        what_if = approver.post(
            "/v1/policy/eval", json={"input": sample_input(), "bundle": "shadow"}
        ).json()
        assert what_if["outcome"] == "deny"
        assert admin.delete("/v1/policy/shadow").status_code == 204
        pushed = admin.post(
            "/v1/policy/bundles", json={"name": "frozen", "files": {"p.rego": DENY_ALL}}
        )
        assert pushed.status_code == 201
        assert agent.post("/v1/proposals", json=PRODUCTION).json()["state"] == "denied"
        history = admin.get("/v1/policy/history").json()["items"]
        assert [h["author"] for h in history] == ["ada", "ada", "ada"]
        back = admin.post("/v1/policy/rollback", json={})
        assert back.status_code == 200 and back.json()["enforcing"] is None
        assert agent.post("/v1/proposals", json=PRODUCTION).json()["state"] == "pending_approval"


def test_an_approval_request_reaches_a_signed_webhook(server: Server, tokens: Tokens) -> None:
    with (
        client(server, tokens.admin) as admin,
        client(server, tokens.agent) as agent,
        http_receiver(200) as receiver,
    ):
        created = admin.post(
            "/v1/notifications/channels",
            json={
                "name": "approvers",
                "kind": "webhook",
                "config": {"url": receiver.url},
                "events": ["approval.requested"],
            },
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        made = agent.post("/v1/proposals", json=PRODUCTION).json()
        assert made["state"] == "pending_approval"
        assert receiver.arrived.wait(30), "the approval request was never delivered"
    [request] = receiver.requests
    assert verify_signature(secret, request.headers, request.body) > 0
    assert request.headers[EVENT_HEADER] == "approval.requested"
    payload = json.loads(request.body)
    assert payload["event"] == "approval.requested"
    assert made["id"] in json.dumps(payload)
