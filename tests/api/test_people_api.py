"""/v1/principals and /v1/groups on a real server: admins manage, auditors read."""

from __future__ import annotations

import httpx

from tests.conftest import Server, Tokens


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_admin_registers_a_human_whose_token_then_works(server: Server, tokens: Tokens) -> None:
    with client(server, tokens.admin) as admin:
        made = admin.post("/v1/principals", json={"name": "nina", "kind": "human"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["roles"] == ["viewer"] and body["token"].startswith("plc_")
        bad = admin.post("/v1/principals", json={"name": "x", "kind": "human", "roles": ["god"]})
        assert bad.status_code == 422 and bad.json()["field"] == "role"
        machine = admin.post(
            "/v1/principals",
            json={"name": "b2", "kind": "agent", "owner": "nina", "roles": ["approver"]},
        )
        assert machine.status_code == 422 and "cannot hold roles" in machine.json()["detail"]
        assert admin.post("/v1/principals", json={"kind": "human"}).json()["field"] == "name"
        listed = admin.get("/v1/principals").json()["items"]
        assert "nina" in {p["name"] for p in listed}
        assert "token" not in str(listed) and "hash" not in str(listed)
    with client(server, body["token"]) as nina:
        assert nina.get("/v1/proposals").status_code == 200  # viewer reads
        refused = nina.post("/v1/proposals/any/approve")
        assert refused.status_code == 403 and refused.json()["roles"] == ["viewer"]
    with client(server, tokens.admin) as admin:
        promoted = admin.put("/v1/principals/nina/roles", json={"roles": ["approver"]})
        assert promoted.status_code == 200 and promoted.json()["roles"] == ["approver"]
        assert admin.put("/v1/principals/nina/roles", json={}).json()["field"] == "roles"
        assert admin.get("/v1/principals/nina").json()["roles"] == ["approver"]
        assert admin.get("/v1/principals/ghost").status_code == 404
        fresh = admin.post("/v1/principals/nina/token").json()["token"]
    with client(server, body["token"]) as old:
        assert old.get("/v1/proposals").status_code == 401  # revoked
    with client(server, fresh) as nina:
        assert nina.post("/v1/proposals/none/approve").status_code == 404  # reached the service


def test_groups_over_http(server: Server, tokens: Tokens) -> None:
    with client(server, tokens.admin) as admin:
        made = admin.post("/v1/groups", json={"name": "payments", "title": "Payments"})
        assert made.status_code == 201 and made.json()["kind"] == "team"
        assert admin.post("/v1/groups", json={"name": "payments"}).status_code == 409
        assert admin.post("/v1/groups", json={"name": "g", "kind": "x"}).status_code == 422
        joined = admin.post("/v1/groups/payments/members", json={"principal": "rita"})
        assert joined.status_code == 200 and joined.json()["members"] == ["rita"]
        assert admin.post("/v1/groups/nope/members", json={"principal": "rita"}).status_code == 404
        assert admin.post("/v1/groups/payments/members", json={}).json()["field"] == "principal"
        report = admin.post("/v1/groups/import").json()  # the tests' graph names two teams
        assert report["unknown_users"] == [] and report["groups_created"] >= 1
        assert {"platform", "payments"} <= {
            g["name"] for g in admin.get("/v1/groups").json()["items"]
        }
    with client(server, tokens.auditor) as auditor:
        assert auditor.get("/v1/groups/payments").json()["members"] == ["rita"]
        refused = auditor.delete("/v1/groups/payments")
        assert refused.status_code == 403 and refused.json()["required_roles"] == ["admin"]
    with client(server, tokens.admin) as admin:
        left = admin.delete("/v1/groups/payments/members/rita")
        assert left.status_code == 200 and left.json()["members"] == []
        assert admin.delete("/v1/groups/payments/members/rita").status_code == 404
        gone = admin.delete("/v1/groups/payments")
        assert gone.json() == {"removed": "payments", "memberships_removed": []}
        assert admin.get("/v1/groups/payments").status_code == 404
