"""Notification channels: their kinds, the events they can hear, and config validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from placet.domain.errors import InputError

# Every event placet notifies about; a channel's ``events`` filter names some of them.
EVENTS: tuple[str, ...] = (
    "approval.requested",
    "approval.escalated",
    "approval.expiring",
    "proposal.expired",
    "proposal.authorized",
    "proposal.denied",
    "test",
)
# Events that ask a human to act: their messages carry approve/deny links.
ACTIONABLE: frozenset[str] = frozenset(
    {"approval.requested", "approval.escalated", "approval.expiring"}
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MAX_URL = 2000
_MAX_RECIPIENTS = 50


class ChannelKind(StrEnum):
    """How a channel delivers: a signed JSON POST, a Slack incoming webhook, or SMTP."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"

    @property
    def signed(self) -> bool:
        """Whether deliveries carry an HMAC signature (and the channel has a secret)."""
        return self is not ChannelKind.EMAIL


@dataclass(frozen=True, slots=True)
class Channel:
    """A validated channel: ``events`` empty means every event."""

    name: str
    kind: ChannelKind
    config: dict[str, Any] = field(default_factory=dict)
    events: tuple[str, ...] = ()

    def hears(self, event: str) -> bool:
        """Whether the channel subscribes to ``event``."""
        return not self.events or event in self.events


def check_name(name: Any) -> str:
    """A channel name: used in URLs and dedup keys, so letters, digits, '.', '_', '-'."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            "name", "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_url(value: Any, field_name: str = "config.url") -> str:
    """An absolute http(s) URL with a host."""
    if not isinstance(value, str) or not value:
        raise InputError(field_name, "is required: the http(s) URL to POST to")
    if len(value) > _MAX_URL:
        raise InputError(field_name, f"is longer than {_MAX_URL} characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            field_name, f"must be an http:// or https:// URL with a host, not {value!r}"
        )
    return value


def check_addresses(value: Any, field_name: str = "config.to") -> list[str]:
    """Email recipients: a non-empty list of ``user@host`` addresses (a lone string is one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise InputError(field_name, "is required: one or more email addresses")
    if len(items) > _MAX_RECIPIENTS:
        raise InputError(field_name, f"at most {_MAX_RECIPIENTS} addresses")
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(f"{field_name}[{i}]", "must be a string")
        _, address = parseaddr(item)
        local, at, domain = address.partition("@")
        if not at or not local or "." not in domain or any(c in item for c in "\r\n"):
            raise InputError(f"{field_name}[{i}]", f"{item!r} is not an email address")
        out.append(item.strip())
    return out


def check_events(events: Iterable[Any] | None) -> tuple[str, ...]:
    """The events filter: known event names, sorted and unique; empty or None means all."""
    if events is None:
        return ()
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise InputError("events", "must be a list of event names")
    seen: set[str] = set()
    for i, event in enumerate(events):
        if event not in EVENTS:
            raise InputError(f"events[{i}]", f"unknown event {event!r}; known: {', '.join(EVENTS)}")
        seen.add(event)
    return tuple(sorted(seen))


def validate_channel(
    name: Any, kind: Any, config: Mapping[str, Any] | None, events: Iterable[Any] | None = None
) -> Channel:
    """Check a channel definition; InputError names the first field that is wrong."""
    check_name(name)
    try:
        channel_kind = ChannelKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in ChannelKind)
        raise InputError("kind", f"must be one of {kinds}, not {kind!r}") from None
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise InputError("config", "must be an object")
    allowed = {"to"} if channel_kind is ChannelKind.EMAIL else {"url"}
    for key in config:
        if key not in allowed:
            raise InputError(
                f"config.{key}", f"is not a {channel_kind.value} setting (use {', '.join(allowed)})"
            )
    if channel_kind is ChannelKind.EMAIL:
        clean: dict[str, Any] = {"to": check_addresses(config.get("to"))}
    else:
        clean = {"url": check_url(config.get("url"))}
    return Channel(name, channel_kind, clean, check_events(events))
