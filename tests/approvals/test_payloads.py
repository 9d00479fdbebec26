"""Payloads: the generic event JSON, its message, the Slack body and the email."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from typing import Any

import pytest

from placet.approvals.payloads import email_message, event_payload, slack_payload

BASE = "https://placet.example/"
VIEW: dict[str, Any] = {
    "id": "01JDQ5Z0000000000000000000",
    "state": "pending_approval",
    "digest": "ab" * 32,
    "agent": {"id": "01A", "name": "deploy-bot"},
    "kind": "deploy",
    "targets": ["checkout", "payments"],
    "parameters": {},
    "environment": "production",
    "intent": "ship <v2> & roll back on error",
    "verify": None,
    "scope": [],
    "decision": {
        "outcome": "require_approval",
        "reasons": ["production needs approval"],
        "approvals": {"min_approvals": 2, "from": ["group:sre"]},
        "policy_digest": "cd" * 32,
    },
    "votes": [{"by": "rita", "vote": "approve", "reason": ""}],
    "reason": "",
    "created_at": "2026-11-26T12:00:00.000Z",
    "updated_at": "2026-11-26T12:00:00.000Z",
}
PAGE = f"https://placet.example/console/proposals/{VIEW['id']}"


def test_generic_payload_summarises_the_proposal_with_links() -> None:
    doc = event_payload("approval.requested", VIEW, BASE, at="2026-11-26T12:00:01.000Z")
    json.dumps(doc)  # JSON-ready
    assert doc["event"] == "approval.requested" and doc["version"] == 1
    assert doc["created_at"] == "2026-11-26T12:00:01.000Z"
    proposal = doc["proposal"]
    assert proposal["agent"] == "deploy-bot" and proposal["targets"] == ["checkout", "payments"]
    assert proposal["min_approvals"] == 2 and proposal["approvals"] == 1
    assert proposal["reasons"] == ["production needs approval"]
    assert doc["links"] == {
        "proposal": PAGE,
        "api": f"https://placet.example/v1/proposals/{VIEW['id']}",
        "approve": f"{PAGE}?action=approve",
        "deny": f"{PAGE}?action=deny",
    }
    assert doc["message"].startswith("Approval requested: deploy on checkout, payments in ")
    assert "(approvals 1 of 2)" in doc["message"] and "deploy-bot" in doc["message"]


def test_outcome_events_carry_no_approve_or_deny_link() -> None:
    doc = event_payload("proposal.denied", VIEW, BASE, detail="Denied by rita.")
    assert set(doc["links"]) == {"proposal", "api"}
    assert doc["message"].startswith("Proposal denied") and doc["message"].endswith(
        "Denied by rita."
    )
    test = event_payload("test", None, BASE)
    assert test["proposal"] is None and test["links"] == {}
    assert "wired up" in test["message"] and test["created_at"].endswith("Z")
    with pytest.raises(ValueError, match="unknown notification event"):
        event_payload("approval.granted", VIEW, BASE)


def test_slack_payload_has_text_blocks_and_link_buttons() -> None:
    body = slack_payload({**event_payload("approval.escalated", VIEW, BASE), "id": "N1"})
    assert PAGE in body["text"]
    actions = [b for b in body["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1
    buttons = {e["text"]["text"]: e for e in actions[0]["elements"]}
    assert buttons["Approve"]["url"] == f"{PAGE}?action=approve"
    assert buttons["Approve"]["style"] == "primary"
    assert buttons["Deny"]["url"] == f"{PAGE}?action=deny" and buttons["Deny"]["style"] == "danger"
    assert buttons["View proposal"]["url"] == PAGE
    first = body["blocks"][0]["text"]["text"]
    assert "&lt;v2&gt; &amp; roll back" in first and "<v2>" not in first  # mrkdwn escaped
    context = [b for b in body["blocks"] if b["type"] == "context"]
    assert "production needs approval" in context[0]["elements"][0]["text"]


def test_slack_test_event_has_no_buttons() -> None:
    body = slack_payload(event_payload("test", None, BASE))
    assert [b["type"] for b in body["blocks"]] == ["section"]
    assert "Test notification" in body["text"]


def test_email_message_round_trips_with_links() -> None:
    doc = {**event_payload("approval.expiring", VIEW, BASE), "id": "NOTE1"}
    mail = email_message(doc, "placet@example.com", ["ops@example.com", "sre@example.com"])
    parsed = message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert parsed["To"] == "ops@example.com, sre@example.com"
    assert parsed["From"] == "placet@example.com"
    assert parsed["Subject"] == (
        "[placet] Approval expiring soon: deploy on checkout, payments (production)"
    )
    assert parsed["Placet-Event"] == "approval.expiring" and parsed["Placet-Event-Id"] == "NOTE1"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Approve      {PAGE}?action=approve" in text
    assert f"Deny         {PAGE}?action=deny" in text
    assert "Policy:      production needs approval" in text
    assert VIEW["digest"] in text


def test_email_subject_cannot_smuggle_headers() -> None:
    view = {**VIEW, "kind": "deploy\r\nBcc: evil@example.com"}
    mail = email_message(event_payload("proposal.authorized", view, BASE), "a@b.c", ["x@y.z"])
    headers = mail.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in headers and "Bcc" in mail["Subject"]
    assert "\r" not in mail["Subject"] and "\n" not in mail["Subject"]
