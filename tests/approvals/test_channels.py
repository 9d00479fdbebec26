"""Channel validation: each mistake is an InputError naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from placet.approvals.channels import EVENTS, ChannelKind, validate_channel
from placet.domain.errors import InputError


def test_valid_channels_are_normalised() -> None:
    hook = validate_channel("ops", "webhook", {"url": "https://hooks.example/x"}, None)
    assert hook.kind is ChannelKind.WEBHOOK and hook.kind.signed
    assert hook.events == () and hook.hears("proposal.denied")
    slack = validate_channel(
        "chat", "slack", {"url": "http://127.0.0.1:9/s"}, ["proposal.denied", "test", "test"]
    )
    assert slack.events == ("proposal.denied", "test")
    assert slack.hears("test") and not slack.hears("approval.requested")
    mail = validate_channel("mail", "email", {"to": "Ops <ops@example.com>"})
    assert mail.config == {"to": ["Ops <ops@example.com>"]} and not mail.kind.signed


@pytest.mark.parametrize(
    ("name", "kind", "config", "events", "field"),
    [
        ("bad name", "webhook", {"url": "https://x.example"}, None, "name"),
        ("", "webhook", {"url": "https://x.example"}, None, "name"),
        ("ok", "pager", {}, None, "kind"),
        ("ok", "webhook", {}, None, "config.url"),
        ("ok", "webhook", {"url": "ftp://x.example"}, None, "config.url"),
        ("ok", "slack", {"url": "https://"}, None, "config.url"),
        ("ok", "webhook", {"url": "https://x.example", "to": ["a@b.c"]}, None, "config.to"),
        ("ok", "webhook", ["https://x.example"], None, "config"),
        ("ok", "email", {}, None, "config.to"),
        ("ok", "email", {"to": []}, None, "config.to"),
        ("ok", "email", {"to": ["not-an-address"]}, None, "config.to[0]"),
        ("ok", "email", {"to": ["a@b.c", "x@y.z\r\nBcc: evil@z.z"]}, None, "config.to[1]"),
        ("ok", "email", {"to": ["a@b.c"], "url": "https://x"}, None, "config.url"),
        ("ok", "webhook", {"url": "https://x.example"}, ["approval.granted"], "events[0]"),
        ("ok", "webhook", {"url": "https://x.example"}, "test", "events"),
    ],
)
def test_mistakes_name_the_field(
    name: str, kind: str, config: Any, events: Any, field: str
) -> None:
    with pytest.raises(InputError) as caught:
        validate_channel(name, kind, config, events)
    assert caught.value.field == field


def test_unknown_event_message_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"approval\.requested") as caught:
        validate_channel("ok", "webhook", {"url": "https://x.example"}, ["nope"])
    assert "nope" in str(caught.value)
    assert "test" in EVENTS and len(EVENTS) == 7
