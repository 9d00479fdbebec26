"""/v1/notifications over HTTP: channels, a real signed delivery, failures and retry."""

from __future__ import annotations

import threading

import httpx

from placet.approvals.webhook import EVENT_HEADER, verify_signature
from tests.approvals.receivers import dead_url, http_receiver
from tests.conftest import Server, Tokens


def admin_client(server: Server, tokens: Tokens) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.admin}"}, timeout=30
    )


def wait_for(client: httpx.Client, status: str, channel: str) -> dict[str, object]:
    """Poll the list (the server delivers on its own thread) until ``channel`` has one."""
    pause = threading.Event()
    for _ in range(300):
        items = client.get("/v1/notifications", params={"status": status}).json()["items"]
        found = [i for i in items if i["channel"] == channel]
        if found:
            return dict(found[0])
        pause.wait(0.05)
    raise AssertionError(f"no {status} notification for {channel}")


def test_channel_test_event_is_delivered_signed(server: Server, tokens: Tokens) -> None:
    with admin_client(server, tokens) as admin, http_receiver(200) as receiver:
        created = admin.post(
            "/v1/notifications/channels",
            json={"name": "ops", "kind": "webhook", "config": {"url": receiver.url}},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        [listed] = admin.get("/v1/notifications/channels").json()["items"]
        assert listed["name"] == "ops" and "secret" not in listed
        queued = admin.post("/v1/notifications/channels/ops/test")
        assert queued.status_code == 202 and queued.json()["event"] == "test"
        assert receiver.arrived.wait(30), "the server never delivered the test event"
        sent = wait_for(admin, "sent", "ops")
    [request] = receiver.requests
    assert verify_signature(secret, request.headers, request.body) > 0
    assert request.headers[EVENT_HEADER] == "test"
    assert sent["id"] == queued.json()["id"] and sent["attempts"] == 1


def test_failures_are_listed_and_retried(server: Server, tokens: Tokens) -> None:
    with admin_client(server, tokens) as admin:
        body = {"name": "gone", "kind": "slack", "config": {"url": dead_url()}}
        assert admin.post("/v1/notifications/channels", json=body).status_code == 201
        queued = admin.post("/v1/notifications/channels/gone/test").json()
        removed = admin.delete("/v1/notifications/channels/gone")
        assert removed.status_code == 200 and removed.json()["cancelled"] == 1
        [failed] = admin.get("/v1/notifications", params={"status": "failed"}).json()["items"]
        assert failed["id"] == queued["id"]
        assert failed["last_error"] == "the channel was removed"
        retried = admin.post(f"/v1/notifications/{failed['id']}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        again = admin.post(f"/v1/notifications/{failed['id']}/retry")
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")


def test_bad_requests_are_problems_naming_the_field(server: Server, tokens: Tokens) -> None:
    with admin_client(server, tokens) as admin:
        bad_url = admin.post(
            "/v1/notifications/channels",
            json={"name": "x", "kind": "webhook", "config": {"url": "gopher://x"}},
        )
        assert bad_url.status_code == 422 and bad_url.json()["field"] == "config.url"
        bad_event = admin.post(
            "/v1/notifications/channels",
            json={"name": "x", "kind": "email", "config": {"to": ["a@b.io"]}, "events": ["nope"]},
        )
        assert bad_event.status_code == 422 and bad_event.json()["field"] == "events[0]"
        malformed = admin.post(
            "/v1/notifications/channels",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status_code == 400
        assert admin.delete("/v1/notifications/channels/ghost").status_code == 404
        assert admin.post("/v1/notifications/channels/ghost/test").status_code == 404
        status = admin.get("/v1/notifications", params={"status": "lost"})
        assert status.status_code == 422 and status.json()["field"] == "status"
        assert admin.post("/v1/notifications/01NOSUCH/retry").status_code == 404
