"""`placet notifications ...` on a local data dir: channels, the table, retry, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from placet.approvals.webhook import verify_signature
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane
from tests.approvals.receivers import http_receiver
from tests.conftest import cli


def deliver(data_dir: Path) -> dict[str, int]:
    cp = ControlPlane.open(load_settings(data_dir))
    try:
        return cp.notifications.deliver_due()
    finally:
        cp.close()


def test_add_test_deliver_list_remove_retry(data_dir: Path) -> None:
    d = ["--data-dir", str(data_dir)]
    with http_receiver(200) as receiver:
        added = cli(
            "notifications",
            "channel",
            "add",
            "ops",
            "--kind",
            "webhook",
            "--url",
            receiver.url,
            "--event",
            "test",
            "--event",
            "proposal.denied",
            *d,
        )
        assert added.returncode == 0, added.stderr
        secret = next(
            line.split(": ", 1)[1]
            for line in added.stdout.splitlines()
            if line.startswith("secret: ")
        )
        assert "will not show it again" in added.stderr
        channels = json.loads(cli("notifications", "channel", "list", "--json", *d).stdout)
        assert channels[0]["events"] == ["proposal.denied", "test"] and "secret" not in channels[0]
        queued = cli("notifications", "channel", "test", "ops", "--json", *d)
        assert queued.returncode == 0, queued.stderr
        note = json.loads(queued.stdout)
        table = cli("notifications", *d)
        assert table.returncode == 0 and note["id"] in table.stdout and "pending" in table.stdout
        assert deliver(data_dir)["sent"] == 1
    [request] = receiver.requests
    verify_signature(secret, request.headers, request.body)
    sent = json.loads(cli("notifications", "list", "--status", "sent", "--json", *d).stdout)
    assert [n["id"] for n in sent] == [note["id"]]

    mail = cli(
        "notifications",
        "channel",
        "add",
        "mail",
        "--kind",
        "email",
        "--to",
        "ops@example.com",
        "--json",
        *d,
    )
    assert mail.returncode == 0 and "secret" not in json.loads(mail.stdout)
    pending = json.loads(cli("notifications", "channel", "test", "mail", "--json", *d).stdout)
    removed = cli("notifications", "channel", "remove", "mail", *d)
    assert removed.returncode == 0 and "1 pending" in removed.stdout
    failed = cli("notifications", "--status", "failed", *d)
    assert pending["id"] in failed.stdout and "the channel was removed" in failed.stdout
    retried = cli("notifications", "retry", pending["id"], *d)
    assert retried.returncode == 0 and "queued again" in retried.stdout
    again = cli("notifications", "retry", pending["id"], *d)
    assert again.returncode == 2 and "only failed ones" in again.stderr


def test_bad_input_exits_2_naming_the_field(data_dir: Path) -> None:
    d = ["--data-dir", str(data_dir)]
    kind = cli("notifications", "channel", "add", "x", "--kind", "pager", *d)
    assert kind.returncode == 2 and "kind:" in kind.stderr
    url = cli("notifications", "channel", "add", "x", "--kind", "slack", *d)
    assert url.returncode == 2 and "config.url" in url.stderr
    event = cli(
        "notifications",
        "channel",
        "add",
        "x",
        "--kind",
        "email",
        "--to",
        "a@b.io",
        "--event",
        "nope",
        *d,
    )
    assert event.returncode == 2 and "events[0]" in event.stderr
    status = cli("notifications", "--status", "lost", *d)
    assert status.returncode == 2 and "status:" in status.stderr
    assert cli("notifications", "channel", "remove", "ghost", *d).returncode == 2
    assert cli("notifications", "channel", "test", "ghost", *d).returncode == 2
