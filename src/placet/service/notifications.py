"""Notifications: channels, an outbox written in the caller's transaction, delivery with retries.

Events are enqueued in the same transaction as the transition that caused them (so nothing
is told about a change that rolled back), then delivered later by :meth:`deliver_due`
outside any write transaction. Delivery failures are recorded and retried with backoff;
they never raise into callers and never block, approve or deny anything.

Webhook and Slack secrets are not stored: each is HMAC-SHA256(key, channel name) with a
key derived from the control plane's signing key, so rotating that key changes them all.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from placet.approvals import backoff, payloads, senders, webhook
from placet.approvals.channels import EVENTS, Channel, ChannelKind, check_name, validate_channel
from placet.domain.errors import Conflict, InputError, NotFound
from placet.domain.ids import new_id
from placet.service.clock import rfc3339
from placet.service.context import Context
from placet.store.tables import notification_channels, notifications

log = logging.getLogger("placet.notifications")

STATUSES = ("pending", "sent", "failed")
SECRET_LABEL = b"placet notifications: webhook secrets v1"
SECRET_PREFIX = "whsec_"
# A batch is claimed for this long while it is sent, so a second deliverer skips it.
CLAIM_SECONDS = 60.0


def _channel(row: Any) -> Channel:
    return Channel(row.name, ChannelKind(row.kind), dict(row.config), tuple(row.events or ()))


def _channel_view(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "kind": row.kind,
        "config": dict(row.config),
        "events": list(row.events or []),
        "enabled": bool(row.enabled),
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def _view(row: Any) -> dict[str, Any]:
    payload = row.payload if isinstance(row.payload, Mapping) else {}
    return {
        "id": row.id,
        "channel": row.channel,
        "event": row.event,
        "proposal_id": row.proposal_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "message": payload.get("message"),
    }


LISTENERS_TTL = 1.0


class NotificationService:
    """Channels, the notification outbox, and its delivery."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Who listens, remembered for LISTENERS_TTL seconds (cleared by this process's own
        # channel changes): the decision path asks on every proposal, and a channel added
        # through another API process is heard at most that much later.
        self._listening: tuple[float, list[Channel]] | None = None

    # ---- secrets -------------------------------------------------------------------

    def secret(self, channel: str) -> str:
        """The signing secret of a webhook/Slack channel (derived, never stored)."""
        key = self.ctx.key.derive(SECRET_LABEL)
        return SECRET_PREFIX + hmac.new(key, channel.encode(), hashlib.sha256).hexdigest()

    # ---- channels ------------------------------------------------------------------

    def add_channel(
        self,
        name: str,
        kind: str,
        config: Mapping[str, Any] | None,
        events: Iterable[str] | None,
        by: str,
    ) -> dict[str, Any]:
        """Create a channel; for webhook/Slack the result carries its secret (shown once)."""
        channel = validate_channel(name, kind, config, events)
        self._listening = None
        with self.ctx.write() as conn:
            exists = conn.execute(
                select(notification_channels.c.name).where(notification_channels.c.name == name)
            ).first()
            if exists:
                raise Conflict(f"a notification channel named {name!r} already exists")
            conn.execute(
                notification_channels.insert().values(
                    name=channel.name,
                    kind=channel.kind.value,
                    config=channel.config,
                    events=list(channel.events),
                    enabled=1,
                    created_by=by,
                    created_at=rfc3339(self.ctx.clock()),
                )
            )
            row = conn.execute(
                select(notification_channels).where(notification_channels.c.name == name)
            ).one()
        view = _channel_view(row)
        if channel.kind.signed:
            view["secret"] = self.secret(channel.name)
        log.info("notification channel %s (%s) added by %s", name, channel.kind.value, by)
        return view

    def channels(self) -> list[dict[str, Any]]:
        """Every channel, by name (never a secret)."""
        with self.ctx.read() as conn:
            rows = conn.execute(
                select(notification_channels).order_by(notification_channels.c.name)
            ).all()
        return [_channel_view(r) for r in rows]

    def remove_channel(self, name: str) -> dict[str, Any]:
        """Delete a channel; its pending notifications end ``failed`` (channel removed)."""
        self._listening = None
        check_name(name)
        with self.ctx.write() as conn:
            found = conn.execute(
                delete(notification_channels).where(notification_channels.c.name == name)
            )
            if not found.rowcount:
                raise NotFound("notification channel", name)
            cancelled = conn.execute(
                update(notifications)
                .where(notifications.c.channel == name, notifications.c.status == "pending")
                .values(status="failed", last_error="the channel was removed")
            ).rowcount
        return {"name": name, "removed": True, "cancelled": cancelled}

    def send_test(self, name: str) -> dict[str, Any]:
        """Enqueue a ``test`` event to one channel; delivered like any other."""
        check_name(name)
        now = self.ctx.clock()
        payload = payloads.event_payload(
            "test",
            None,
            self.ctx.settings.public_url,
            at=rfc3339(now),
            detail=f"Sent to channel {name}.",
        )
        dedup = f"test:{new_id()}"
        with self.ctx.write() as conn:
            if not self._channel_rows(conn, [name]):
                raise NotFound("notification channel", name)
            self.enqueue(conn, "test", None, payload, [name], dedup)
            row = conn.execute(
                select(notifications).where(notifications.c.dedup_key == f"{dedup}:{name}")
            ).one()
        return _view(row)

    # ---- the outbox ----------------------------------------------------------------

    def _channel_rows(self, conn: Connection, names: list[str] | None) -> list[Any]:
        query = select(notification_channels).where(notification_channels.c.enabled == 1)
        if names is not None:
            query = query.where(notification_channels.c.name.in_(names))
        return list(conn.execute(query.order_by(notification_channels.c.name)).all())

    def listeners(self, conn: Connection, event: str, named: Iterable[str] = ()) -> list[str]:
        """The enabled channels that would be told of ``event``: those subscribed to it and
        those ``named``. One query; callers skip building a payload when it is empty."""
        wanted = set(named)
        cached = self._listening
        now = time.monotonic()
        if cached is None or now - cached[0] > LISTENERS_TTL:
            cached = (now, [_channel(r) for r in self._channel_rows(conn, None)])
            self._listening = cached
        return [c.name for c in cached[1] if c.name in wanted or c.hears(event)]

    def enqueue(
        self,
        conn: Connection,
        event: str,
        proposal_id: str | None,
        payload: Mapping[str, Any],
        channels: Iterable[str] | None,
        dedup: str,
    ) -> int:
        """Queue ``payload`` for delivery in the caller's transaction; return the rows added.

        ``channels`` None means every enabled channel that subscribes to ``event``; named
        channels (a decision's ``notify`` obligation) are told whatever their filter, and
        names that do not exist are skipped and logged. A row per channel, keyed
        ``{dedup}:{channel}``: enqueueing the same event again adds nothing.
        """
        if event not in EVENTS:
            log.error("not notifying unknown event %r (proposal %s)", event, proposal_id)
            return 0
        try:
            document = self._document(event, payload)
        except Exception:  # a malformed payload must not fail the caller's transition
            log.exception("not notifying %s for proposal %s: bad payload", event, proposal_id)
            return 0
        if channels is None:
            rows = self._channel_rows(conn, None)
            targets = [c.name for c in map(_channel, rows) if c.hears(event)]
        else:
            wanted = list(dict.fromkeys(channels))
            found = {r.name for r in self._channel_rows(conn, wanted)}
            for missing in (n for n in wanted if n not in found):
                log.warning(
                    "notification channel %r (for %s on proposal %s) does not exist or is "
                    "disabled; skipped",
                    missing,
                    event,
                    proposal_id,
                )
            targets = [n for n in wanted if n in found]
        now = rfc3339(self.ctx.clock())
        added = 0
        for name in targets:
            values = {
                "id": new_id(),
                "channel": name,
                "event": event,
                "proposal_id": proposal_id,
                "dedup_key": f"{dedup}:{name}",
                "payload": document,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            added += self._insert_new(conn, values)
        return added

    def _document(self, event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The generic event document: ``payload`` itself when built by
        :func:`placet.approvals.payloads.event_payload`, else built from its ``proposal``
        view (and optional ``detail``)."""
        if payload.get("version") == payloads.PAYLOAD_VERSION and "message" in payload:
            return dict(payload)
        proposal = payload.get("proposal")
        detail = payload.get("detail")
        return payloads.event_payload(
            event,
            proposal if isinstance(proposal, Mapping) and "id" in proposal else None,
            self.ctx.settings.public_url,
            at=rfc3339(self.ctx.clock()),
            detail=detail if isinstance(detail, str) else "",
        )

    def _insert_new(self, conn: Connection, values: dict[str, Any]) -> int:
        """Insert unless the dedup key is taken (no error either way); 1 when inserted."""
        dialect = conn.dialect.name
        if dialect == "sqlite":
            statement: Any = sqlite.insert(notifications).values(**values)
            statement = statement.on_conflict_do_nothing(index_elements=["dedup_key"])
        elif dialect == "postgresql":
            statement = postgresql.insert(notifications).values(**values)
            statement = statement.on_conflict_do_nothing(index_elements=["dedup_key"])
        else:
            taken = conn.execute(
                select(notifications.c.id).where(notifications.c.dedup_key == values["dedup_key"])
            ).first()
            if taken:
                return 0
            statement = insert(notifications).values(**values)
        return 1 if conn.execute(statement).rowcount else 0

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Notifications, newest first; ``status`` pending, sent or failed."""
        if status is not None and status not in STATUSES:
            raise InputError("status", f"must be one of {', '.join(STATUSES)}, not {status!r}")
        if not 1 <= limit <= 1000:
            raise InputError("limit", "must be between 1 and 1000")
        query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(notifications.c.status == status)
        with self.ctx.read() as conn:
            rows = conn.execute(query).all()
        return [_view(r) for r in rows]

    def get(self, notification_id: str) -> dict[str, Any]:
        """One notification with its stored payload."""
        with self.ctx.read() as conn:
            row = conn.execute(
                select(notifications).where(notifications.c.id == notification_id)
            ).first()
        if row is None:
            raise NotFound("notification", notification_id)
        return {**_view(row), "payload": row.payload}

    def retry(self, notification_id: str) -> dict[str, Any]:
        """Put a failed notification back in the queue, due now, with a fresh schedule."""
        with self.ctx.write() as conn:
            row = conn.execute(
                select(notifications).where(notifications.c.id == notification_id)
            ).first()
            if row is None:
                raise NotFound("notification", notification_id)
            if row.status != "failed":
                raise Conflict(
                    f"notification {notification_id} is {row.status}; only failed ones are retried"
                )
            conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(status="pending", attempts=0, next_attempt_at=rfc3339(self.ctx.clock()))
            )
            fresh = conn.execute(
                select(notifications).where(notifications.c.id == notification_id)
            ).one()
        return _view(fresh)

    # ---- delivery ------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None, limit: int = 50) -> dict[str, int]:
        """Send every pending notification that is due at ``now``; record each result.

        Sending happens outside any write transaction. Returns counts: ``sent``,
        ``retried`` (failed, another attempt scheduled by backoff) and ``failed``
        (attempts used up). Never raises for a delivery failure.
        """
        moment = now or self.ctx.clock()
        counts = {"sent": 0, "retried": 0, "failed": 0}
        batch = self._claim(moment, limit)
        for row, channel in batch:
            error: str | None = None
            note: str | None = None
            try:
                if channel is None:
                    raise senders.DeliveryError(f"channel {row.channel!r} no longer exists")
                note = self._send(row, channel)
            except Exception as exc:  # any failure is recorded, never raised
                error = str(exc) or type(exc).__name__
                log.warning("notification %s to %s failed: %s", row.id, row.channel, error)
            outcome = self._record(row, moment, error, note)
            counts[outcome] += 1
        return counts

    def _claim(self, moment: datetime, limit: int) -> builtins.list[tuple[Any, Channel | None]]:
        """Due rows with their channels, pushed ``CLAIM_SECONDS`` ahead while being sent."""
        due = rfc3339(moment)
        with self.ctx.write() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.status == "pending", notifications.c.next_attempt_at <= due)
                .order_by(notifications.c.next_attempt_at, notifications.c.id)
                .limit(limit)
            ).all()
            if not rows:
                return []
            conn.execute(
                update(notifications)
                .where(notifications.c.id.in_([r.id for r in rows]))
                .values(next_attempt_at=rfc3339(moment + timedelta(seconds=CLAIM_SECONDS)))
            )
            names = sorted({r.channel for r in rows})
            found = {
                c.name: _channel(c)
                for c in conn.execute(
                    select(notification_channels).where(notification_channels.c.name.in_(names))
                ).all()
            }
        return [(r, found.get(r.channel)) for r in rows]

    def _send(self, row: Any, channel: Channel) -> str | None:
        """Deliver one notification over its channel; a note for partial success."""
        document = {**row.payload, "id": row.id, "channel": channel.name}
        if channel.kind is ChannelKind.EMAIL:
            settings = self.ctx.settings
            smtp = senders.SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                user=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
            sender = settings.smtp_from or "placet@localhost"
            message = payloads.email_message(document, sender, channel.config["to"])
            refused = senders.send_email(smtp, message)
            return f"recipients refused: {', '.join(refused)}" if refused else None
        body_doc = document
        if channel.kind is ChannelKind.SLACK:
            body_doc = payloads.slack_payload(document)
        body = json.dumps(body_doc, separators=(",", ":"), sort_keys=True).encode()
        headers = webhook.sign_headers(
            self.secret(channel.name), body, event=row.event, event_id=row.id, now=self.ctx.clock()
        )
        senders.post(channel.config["url"], body, headers)
        return None

    def _record(self, row: Any, moment: datetime, error: str | None, note: str | None) -> str:
        """Store one attempt's result; return ``sent``, ``retried`` or ``failed``."""
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts}
        if error is None:
            outcome = "sent"
            values.update(status="sent", last_error=note, sent_at=rfc3339(moment))
        else:
            following = backoff.next_attempt(attempts, moment)
            values["last_error"] = error[:2000]
            if following is None:
                outcome = "failed"
                values["status"] = "failed"
            else:
                outcome = "retried"
                values["next_attempt_at"] = rfc3339(following)
        with self.ctx.write() as conn:
            conn.execute(
                update(notifications)
                .where(
                    notifications.c.id == row.id,
                    notifications.c.status == "pending",
                    notifications.c.attempts == row.attempts,
                )
                .values(**values)
            )
        return outcome
