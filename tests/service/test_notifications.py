"""Notifications end to end: real SQLite, a real HTTP receiver, a real SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from placet.approvals import backoff
from placet.approvals.payloads import event_payload
from placet.approvals.webhook import EVENT_HEADER, EVENT_ID_HEADER, verify_signature
from placet.domain.errors import Conflict, InputError, NotFound
from placet.domain.signing import SigningKey
from placet.service.clock import parse_rfc3339
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane
from placet.service.notifications import SECRET_LABEL, NotificationService
from tests.approvals.receivers import dead_url, http_receiver, smtp_server

PROPOSAL_ID = "01JDQ5Z0000000000000000000"
VIEW: dict[str, Any] = {
    "id": PROPOSAL_ID,
    "state": "pending_approval",
    "digest": "ab" * 32,
    "agent": {"id": "01A", "name": "deploy-bot"},
    "kind": "deploy",
    "targets": ["svc"],
    "environment": "production",
    "intent": "ship it",
    "decision": {
        "outcome": "require_approval",
        "reasons": ["production needs approval"],
        "approvals": {"min_approvals": 1},
        "policy_digest": "cd" * 32,
    },
    "votes": [],
}


def enqueue(
    plane: ControlPlane,
    event: str = "approval.requested",
    channels: list[str] | None = None,
    dedup: str = "d1",
) -> int:
    payload = event_payload(event, VIEW, plane.ctx.settings.public_url)
    with plane.ctx.write() as conn:
        return plane.notifications.enqueue(conn, event, PROPOSAL_ID, payload, channels, dedup)


def only(plane: ControlPlane, status: str | None = None) -> dict[str, object]:
    items = plane.notifications.list(status)
    assert len(items) == 1, items
    return items[0]


def test_webhook_is_delivered_signed_and_verifiable(plane: ControlPlane) -> None:
    with http_receiver(200) as receiver:
        added = plane.notifications.add_channel("ops", "webhook", {"url": receiver.url}, None, "t")
        secret = added["secret"]
        assert enqueue(plane) == 1
        assert plane.notifications.deliver_due() == {"sent": 1, "retried": 0, "failed": 0}
    [request] = receiver.requests
    assert verify_signature(secret, request.headers, request.body) > 0
    item = only(plane, "sent")
    assert request.headers[EVENT_ID_HEADER] == item["id"]
    assert request.headers[EVENT_HEADER] == "approval.requested"
    document = json.loads(request.body)
    assert document["id"] == item["id"] and document["channel"] == "ops"
    assert document["proposal"]["id"] == PROPOSAL_ID
    assert document["links"]["approve"].endswith(f"/console/proposals/{PROPOSAL_ID}?action=approve")
    assert item["attempts"] == 1 and item["sent_at"] and item["last_error"] is None
    assert plane.notifications.deliver_due() == {"sent": 0, "retried": 0, "failed": 0}
    with pytest.raises(Exception, match="does not match"):  # another channel's secret
        other = plane.notifications.secret("other")
        verify_signature(other, request.headers, request.body)


def test_slack_channel_gets_blocks_with_approve_and_deny_links(plane: ControlPlane) -> None:
    with http_receiver(200) as receiver:
        added = plane.notifications.add_channel("chat", "slack", {"url": receiver.url}, None, "t")
        enqueue(plane, "approval.escalated")
        assert plane.notifications.deliver_due()["sent"] == 1
    [request] = receiver.requests
    verify_signature(added["secret"], request.headers, request.body)
    body = json.loads(request.body)
    assert "Approval escalated" in body["text"]
    buttons = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Approve", "Deny", "View proposal"]
    assert buttons[0]["url"].endswith("?action=approve")


def test_a_500_is_retried_on_the_backoff_schedule(plane: ControlPlane) -> None:
    with http_receiver(500, 200) as receiver:
        plane.notifications.add_channel("ops", "webhook", {"url": receiver.url}, None, "t")
        enqueue(plane)
        t0 = plane.ctx.clock()
        assert plane.notifications.deliver_due(t0) == {"sent": 0, "retried": 1, "failed": 0}
        item = only(plane, "pending")
        assert item["attempts"] == 1 and "HTTP 500" in str(item["last_error"])
        assert parse_rfc3339(str(item["next_attempt_at"])) == _ms(t0 + timedelta(seconds=2))
        early = plane.notifications.deliver_due(t0 + timedelta(seconds=1))
        assert early == {"sent": 0, "retried": 0, "failed": 0} and len(receiver.requests) == 1
        late = plane.notifications.deliver_due(t0 + timedelta(seconds=2))
        assert late == {"sent": 1, "retried": 0, "failed": 0}
    first, second = receiver.requests
    assert first.headers[EVENT_ID_HEADER] == second.headers[EVENT_ID_HEADER]  # dedupe key
    assert first.body == second.body
    assert only(plane, "sent")["attempts"] == 2


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_a_dead_url_fails_after_max_attempts_and_can_be_retried(plane: ControlPlane) -> None:
    plane.notifications.add_channel("dead", "webhook", {"url": dead_url()}, None, "t")
    enqueue(plane)
    now = plane.ctx.clock()
    outcomes = []
    for attempt in range(1, backoff.MAX_ATTEMPTS + 1):
        counts = plane.notifications.deliver_due(now)
        outcomes.append("failed" if counts["failed"] else "retried" if counts["retried"] else "")
        if attempt < backoff.MAX_ATTEMPTS:
            now += timedelta(seconds=backoff.delay(attempt))
    assert outcomes == ["retried"] * 7 + ["failed"]
    failed = only(plane, "failed")
    assert failed["attempts"] == 8 and failed["next_attempt_at"] is None
    assert "POST http://127.0.0.1" in str(failed["last_error"])
    assert plane.notifications.deliver_due(now + timedelta(days=1))["failed"] == 0
    again = plane.notifications.retry(str(failed["id"]))
    assert again["status"] == "pending" and again["attempts"] == 0
    with pytest.raises(Conflict, match="only failed ones"):
        plane.notifications.retry(str(failed["id"]))
    with pytest.raises(NotFound):
        plane.notifications.retry("01NOSUCHNOTIFICATION000000")


def test_email_reaches_a_real_smtp_server(data_dir: Path) -> None:
    with smtp_server() as (mailbox, port):
        settings = load_settings(
            data_dir, smtp_host="127.0.0.1", smtp_port=port, smtp_from="placet@example.com"
        )
        cp = ControlPlane.open(settings)
        try:
            added = cp.notifications.add_channel(
                "mail", "email", {"to": ["ops@example.com", "sre@example.com"]}, None, "t"
            )
            assert "secret" not in added
            enqueue(cp, "proposal.expired")
            assert cp.notifications.deliver_due()["sent"] == 1
        finally:
            cp.close()
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "placet@example.com"
    assert recipients == ["ops@example.com", "sre@example.com"]
    assert message["Subject"] == "[placet] Proposal expired: deploy on svc (production)"
    assert message["Placet-Event"] == "proposal.expired"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"/console/proposals/{PROPOSAL_ID}" in text and "Approve" not in text


def test_email_without_smtp_settings_fails_visibly(plane: ControlPlane) -> None:
    plane.notifications.add_channel("mail", "email", {"to": ["ops@example.com"]}, None, "t")
    enqueue(plane)
    assert plane.notifications.deliver_due()["retried"] == 1
    assert "PLACET_SMTP_HOST" in str(only(plane)["last_error"])


def test_enqueue_follows_filters_names_dedup_and_the_transaction(plane: ControlPlane) -> None:
    n = plane.notifications
    n.add_channel("all", "webhook", {"url": "http://127.0.0.1:9/a"}, None, "t")
    n.add_channel("denials", "webhook", {"url": "http://127.0.0.1:9/b"}, ["proposal.denied"], "t")
    assert enqueue(plane, "approval.requested") == 1  # "denials" does not hear it
    assert enqueue(plane, "approval.requested") == 0  # same dedup key: nothing new
    assert enqueue(plane, "proposal.denied", dedup="d2") == 2
    # Named channels (a decision's notify): told regardless of filter; unknown ones skipped.
    assert enqueue(plane, "approval.requested", ["denials", "ghost"], dedup="d3") == 1
    with plane.ctx.write() as conn:  # an unknown event: logged, no row, no error
        assert n.enqueue(conn, "approval.granted", None, {"proposal": VIEW}, None, "d4") == 0
    rows = {(i["channel"], i["event"]) for i in n.list()}
    assert rows == {
        ("all", "approval.requested"),
        ("all", "proposal.denied"),
        ("denials", "proposal.denied"),
        ("denials", "approval.requested"),
    }
    payload = event_payload("proposal.authorized", VIEW, "http://x")
    with pytest.raises(RuntimeError), plane.ctx.write() as conn:
        assert n.enqueue(conn, "proposal.authorized", PROPOSAL_ID, payload, None, "d5") == 1
        raise RuntimeError("the transition failed")
    assert len(n.list()) == 4  # rolled back with the caller's transaction


def test_a_bare_proposal_view_payload_is_rendered(plane: ControlPlane) -> None:
    plane.notifications.add_channel("all", "webhook", {"url": "http://127.0.0.1:9/"}, None, "t")
    with plane.ctx.write() as conn:
        added = plane.notifications.enqueue(
            conn, "proposal.denied", PROPOSAL_ID, {"proposal": VIEW}, None, "v"
        )
    assert added == 1
    item = plane.notifications.get(str(only(plane)["id"]))
    assert item["payload"]["message"].startswith("Proposal denied: deploy on svc")
    assert item["payload"]["links"]["proposal"].startswith("http://127.0.0.1:8700/console/")


def test_channels_secrets_removal_and_test_events(plane: ControlPlane) -> None:
    n = plane.notifications
    added = n.add_channel("ops", "webhook", {"url": "https://hooks.example/x"}, ["test"], "alice")
    key = plane.ctx.key.derive(SECRET_LABEL)
    expected = "whsec_" + hmac.new(key, b"ops", hashlib.sha256).hexdigest()
    assert added["secret"] == expected and added["created_by"] == "alice"
    [listed] = n.channels()
    assert "secret" not in listed and listed["events"] == ["test"]
    assert expected not in json.dumps(n.channels())
    rotated = NotificationService(replace(plane.ctx, key=SigningKey.generate()))
    assert rotated.secret("ops") != expected  # a key rotation changes every secret
    with pytest.raises(Conflict):
        n.add_channel("ops", "slack", {"url": "https://hooks.example/y"}, None, "alice")
    with pytest.raises(InputError) as caught:
        n.add_channel("x", "webhook", {"url": "file:///etc/passwd"}, None, "alice")
    assert caught.value.field == "config.url"
    test = n.send_test("ops")
    assert test["event"] == "test" and test["status"] == "pending" and test["proposal_id"] is None
    assert "channel ops" in str(test["message"])
    with pytest.raises(NotFound):
        n.send_test("ghost")
    removed = n.remove_channel("ops")
    assert removed == {"name": "ops", "removed": True, "cancelled": 1}
    assert only(plane, "failed")["last_error"] == "the channel was removed"
    assert n.channels() == []
    with pytest.raises(NotFound):
        n.remove_channel("ops")
    with pytest.raises(InputError) as bad:
        n.list("lost")
    assert bad.value.field == "status"


def test_a_claimed_batch_is_not_sent_twice(plane: ControlPlane) -> None:
    with http_receiver(200) as receiver:
        plane.notifications.add_channel("ops", "webhook", {"url": receiver.url}, None, "t")
        enqueue(plane)
        now = plane.ctx.clock()
        claimed = plane.notifications._claim(now, 10)
        assert len(claimed) == 1
        # A second deliverer at the same moment finds nothing due.
        assert plane.notifications.deliver_due(now) == {"sent": 0, "retried": 0, "failed": 0}
    assert receiver.requests == []
