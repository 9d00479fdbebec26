"""``placet notifications``: the outbox (list, retry) and channels (add, list, remove, test)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from placet.cli.common import DataDir, Json, console, err_console, open_plane, print_json

if TYPE_CHECKING:
    from placet.service.notifications import NotificationService

notifications_app = typer.Typer(
    help="Outgoing notifications (webhook, Slack, email): what was sent, what failed, "
    "and the channels. Without a subcommand: list. Works on the local data dir.",
    invoke_without_command=True,
)
channel_app = typer.Typer(
    help="Notification channels: where events are delivered.", no_args_is_help=True
)

Status = Annotated[
    str | None, typer.Option("--status", help="Only pending, sent or failed notifications.")
]
Limit = Annotated[int, typer.Option("--limit", help="At most this many, newest first.")]


@contextmanager
def _service(data_dir: Path | None) -> Iterator[NotificationService]:
    cp = open_plane(data_dir)
    try:
        yield cp.notifications
    finally:
        cp.close()


def _print_list(items: list[dict[str, Any]]) -> None:
    table = Table(
        "id", "channel", "event", "proposal", "status", "attempts", "last error", "next attempt"
    )
    for item in items:
        table.add_row(
            item["id"],
            item["channel"],
            item["event"],
            item["proposal_id"] or "",
            item["status"],
            str(item["attempts"]),
            item["last_error"] or "",
            item["next_attempt_at"] or "",
        )
    console.print(table)
    if not items:
        console.print("no notifications")


def _list(data_dir: Path | None, status: str | None, limit: int, json: bool) -> None:
    with _service(data_dir) as service:
        items = service.list(status, limit)
    if json:
        print_json(items)
    else:
        _print_list(items)


@notifications_app.callback()
def notifications(
    ctx: typer.Context,
    status: Status = None,
    limit: Limit = 100,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Outgoing notifications: list them (the default), retry failures, manage channels."""
    if ctx.invoked_subcommand is None:
        _list(data_dir, status, limit, json)


@notifications_app.command("list")
def list_(
    status: Status = None, limit: Limit = 100, data_dir: DataDir = None, json: Json = False
) -> None:
    """List notifications, newest first: channel, event, status, attempts, last error."""
    _list(data_dir, status, limit, json)


@notifications_app.command("retry")
def retry(
    notification_id: Annotated[str, typer.Argument(metavar="ID", help="A failed notification.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Queue a failed notification again, due now, with a fresh retry schedule."""
    with _service(data_dir) as service:
        item = service.retry(notification_id)
    if json:
        print_json(item)
        return
    console.print(f"notification {item['id']} to {item['channel']} queued again", highlight=False)


@channel_app.command("add")
def channel_add(
    name: Annotated[str, typer.Argument(help="Channel name, e.g. ops-webhook.")],
    kind: Annotated[str, typer.Option("--kind", help="webhook, slack or email.")],
    url: Annotated[
        str | None, typer.Option("--url", help="webhook/slack: the http(s) URL to POST to.")
    ] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="email: a recipient (repeatable).")
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Only this event (repeatable; default: every event)."),
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Add a channel; for webhook and Slack print its signing secret (shown once)."""
    config: dict[str, Any] = {}
    if url is not None:
        config["url"] = url
    if to:
        config["to"] = list(to)
    with _service(data_dir) as service:
        view = service.add_channel(name, kind, config, event, f"local:{getpass.getuser()}")
    if json:
        print_json(view)
        return
    events = ", ".join(view["events"]) or "every event"
    console.print(f"{view['kind']} channel {view['name']} added ({events})", highlight=False)
    if "secret" in view:
        console.print(f"secret: {view['secret']}", highlight=False)
        err_console.print(
            "warning: keep the secret now (receivers verify Placet-Signature with it); placet "
            "does not store it and will not show it again. Rotating the control plane key "
            "changes it."
        )


@channel_app.command("list")
def channel_list(data_dir: DataDir = None, json: Json = False) -> None:
    """List channels with their kind, destination and events (never secrets)."""
    with _service(data_dir) as service:
        items = service.channels()
    if json:
        print_json(items)
        return
    table = Table("name", "kind", "destination", "events", "enabled", "created by")
    for item in items:
        config = item["config"]
        destination = config.get("url") or ", ".join(config.get("to", []))
        table.add_row(
            item["name"],
            item["kind"],
            destination,
            ", ".join(item["events"]) or "all",
            "yes" if item["enabled"] else "no",
            item["created_by"],
        )
    console.print(table)


@channel_app.command("remove")
def channel_remove(
    name: Annotated[str, typer.Argument(help="The channel to remove.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Remove a channel; its pending notifications are marked failed."""
    with _service(data_dir) as service:
        result = service.remove_channel(name)
    if json:
        print_json(result)
        return
    console.print(
        f"channel {name} removed ({result['cancelled']} pending notifications failed)",
        highlight=False,
    )


@channel_app.command("test")
def channel_test(
    name: Annotated[str, typer.Argument(help="The channel to test.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Queue a test notification to a channel (a running server delivers it)."""
    with _service(data_dir) as service:
        item = service.send_test(name)
    if json:
        print_json(item)
        return
    console.print(
        f"test notification {item['id']} queued for {name}; see `placet notifications`",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    notifications_app.add_typer(channel_app, name="channel")
    app.add_typer(notifications_app, name="notifications")
