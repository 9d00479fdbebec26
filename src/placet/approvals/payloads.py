"""What a notification says: the generic event JSON, its message, Slack and email forms.

The generic document is built once when the event happens (from a proposal view as the API
shows it) and stored in the outbox; each channel kind renders it at delivery time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

from placet.approvals.channels import ACTIONABLE, EVENTS

PAYLOAD_VERSION = 1
# Fold headers only past RFC 5322's hard limit: Python folds a long Subject before its first
# word, which readers then show with a leading space.
_MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
_HEADLINES = {
    "approval.requested": "Approval requested",
    "approval.escalated": "Approval escalated",
    "approval.expiring": "Approval expiring soon",
    "proposal.expired": "Proposal expired",
    "proposal.authorized": "Proposal authorized",
    "proposal.denied": "Proposal denied",
    "test": "Test notification",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def links(proposal_id: str, base_url: str, actionable: bool) -> dict[str, str]:
    """Console and API links for a proposal; approve/deny links when a human is asked to act."""
    base = base_url.rstrip("/")
    page = f"{base}/console/proposals/{proposal_id}"
    out = {"proposal": page, "api": f"{base}/v1/proposals/{proposal_id}"}
    if actionable:
        out["approve"] = f"{page}?action=approve"
        out["deny"] = f"{page}?action=deny"
    return out


def _summary(view: Mapping[str, Any]) -> dict[str, Any]:
    decision = view.get("decision") or {}
    approvals = decision.get("approvals") or {}
    agent = view.get("agent") or {}
    return {
        "id": view["id"],
        "state": view.get("state"),
        "digest": view.get("digest"),
        "kind": view.get("kind"),
        "targets": list(view.get("targets") or []),
        "environment": view.get("environment"),
        "intent": view.get("intent"),
        "agent": agent.get("name") if isinstance(agent, Mapping) else agent,
        "outcome": decision.get("outcome"),
        "reasons": list(decision.get("reasons") or []),
        "min_approvals": approvals.get("min_approvals") if approvals else None,
        "approvals": sum(1 for v in view.get("votes") or [] if v.get("vote") == "approve"),
    }


def message(event: str, proposal: Mapping[str, Any] | None, detail: str = "") -> str:
    """One human-readable line (or two) saying what happened and what is asked."""
    text = _HEADLINES.get(event, event)
    if proposal is not None:
        targets = ", ".join(proposal.get("targets") or []) or "(no targets)"
        text += (
            f": {proposal.get('kind')} on {targets} in {proposal.get('environment')}, "
            f"proposed by {proposal.get('agent')}"
        )
        if event in ACTIONABLE and proposal.get("min_approvals"):
            text += f" (approvals {proposal.get('approvals', 0)} of {proposal['min_approvals']})"
        if proposal.get("intent"):
            text += f". Intent: {proposal['intent']}"
    elif event == "test":
        text += " from placet: this channel is wired up"
    if detail:
        text += f". {detail}"
    return text


def event_payload(
    event: str,
    proposal: Mapping[str, Any] | None,
    base_url: str,
    *,
    at: str | None = None,
    detail: str = "",
) -> dict[str, Any]:
    """The generic event document (JSON-ready) for ``event`` about a proposal view.

    ``proposal`` is what ``placet.service.proposals.view`` returns (or None for ``test``);
    ``at`` is the RFC 3339 time of the event (default: now).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    summary = _summary(proposal) if proposal is not None else None
    return {
        "version": PAYLOAD_VERSION,
        "event": event,
        "created_at": at or _now(),
        "message": message(event, summary, detail),
        "detail": detail,
        "proposal": summary,
        "links": (
            links(summary["id"], base_url, event in ACTIONABLE) if summary is not None else {}
        ),
    }


def _escape(text: Any) -> str:
    """Slack mrkdwn control characters escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _button(text: str, url: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "url": url,
    }
    if style:
        button["style"] = style
    return button


def slack_payload(document: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (fallback) and ``blocks`` with link buttons."""
    proposal = document.get("proposal")
    link = document.get("links") or {}
    headline = _HEADLINES.get(str(document.get("event")), str(document.get("event")))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(document["message"])}}
    ]
    if proposal:
        fields = [
            ("Kind", proposal.get("kind")),
            ("Environment", proposal.get("environment")),
            ("Targets", ", ".join(proposal.get("targets") or [])),
            ("Proposed by", proposal.get("agent")),
            ("State", proposal.get("state")),
            ("Digest", str(proposal.get("digest") or "")[:16]),
        ]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{_escape(value)}"}
                    for name, value in fields
                ],
            }
        )
        if proposal.get("reasons"):
            reasons = "; ".join(_escape(r) for r in proposal["reasons"])
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Policy: {reasons}"}]}
            )
    buttons = []
    if "approve" in link:
        buttons.append(_button("Approve", link["approve"], "primary"))
    if "deny" in link:
        buttons.append(_button("Deny", link["deny"], "danger"))
    if "proposal" in link:
        buttons.append(_button("View proposal", link["proposal"]))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    text = str(document["message"])
    if "proposal" in link:
        text = f"{headline}: <{link['proposal']}|{_escape(document['message'])}>"
    return {"text": text, "blocks": blocks}


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def email_message(document: Mapping[str, Any], sender: str, to: Sequence[str]) -> EmailMessage:
    """A plain-text email of the event, with the links spelled out."""
    proposal = document.get("proposal")
    headline = _HEADLINES.get(str(document.get("event")), str(document.get("event")))
    mail = EmailMessage(policy=_MAIL_POLICY)
    subject = headline
    if proposal:
        subject += f": {proposal.get('kind')} on {', '.join(proposal.get('targets') or [])}"
        subject += f" ({proposal.get('environment')})"
    mail["Subject"] = _one_line(f"[placet] {subject}")
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Placet-Event"] = _one_line(str(document.get("event")))
    if document.get("id"):
        mail["Placet-Event-Id"] = _one_line(str(document["id"]))
    lines = [str(document["message"]), ""]
    if proposal:
        lines += [
            f"Proposal:    {proposal.get('id')}",
            f"State:       {proposal.get('state')}",
            f"Kind:        {proposal.get('kind')}",
            f"Targets:     {', '.join(proposal.get('targets') or [])}",
            f"Environment: {proposal.get('environment')}",
            f"Proposed by: {proposal.get('agent')}",
            f"Digest:      {proposal.get('digest')}",
        ]
        for reason in proposal.get("reasons") or []:
            lines.append(f"Policy:      {reason}")
        lines.append("")
    link = document.get("links") or {}
    for name in ("approve", "deny", "proposal"):
        if name in link:
            lines.append(f"{name.capitalize():<12} {link[name]}")
    lines += ["", "Sent by placet. A notification never approves or denies anything by itself."]
    mail.set_content("\n".join(lines) + "\n")
    return mail
