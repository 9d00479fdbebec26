"""``placet init``, ``placet serve``, ``placet principal ...`` and ``placet group ...``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from placet.cli.common import (
    DataDir,
    Json,
    console,
    on_plane,
    print_fields,
    print_json,
    settings_for,
    setup_logging,
)
from placet.domain.errors import InputError
from placet.service.config import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    from placet.service.control_plane import ControlPlane

principal_app = typer.Typer(
    help="Humans, agents and runners, their roles and their API tokens.", no_args_is_help=True
)
group_app = typer.Typer(
    help="Groups and teams and their members (on the local data dir).", no_args_is_help=True
)
member_app = typer.Typer(help="Add or remove a group's members.", no_args_is_help=True)
LOCAL_ADMIN = "local-cli"  # who ``principal roles`` records on a local data dir


def open_plane_with(settings: Settings) -> ControlPlane:
    from placet.service.control_plane import ControlPlane

    return ControlPlane.open(settings)


def init(data_dir: DataDir = None, json: Json = False) -> None:
    """Create the data dir, run database migrations and create the signing key (idempotent)."""
    from placet.service.control_plane import initialise

    report = initialise(settings_for(data_dir))
    if json:
        print_json(
            {
                "data_dir": str(report.data_dir),
                "database": report.database_url,
                "key": str(report.key_path),
                "keyid": report.keyid,
                "created_key": report.created_key,
            }
        )
        return
    console.print(f"data dir   {report.data_dir}")
    console.print(f"database   {report.database_url} (migrated)")
    verb = "created" if report.created_key else "kept"
    console.print(f"signing key {report.key_path} ({verb}, keyid {report.keyid[:16]}…)")


def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            envvar="PLACET_POLICY_DIR",
            help="Directory of .rego files (default bundle if unset).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            "--lease-seconds",
            help="How long a runner's lease lasts without a heartbeat (runners heartbeat every"
            " third of it); default 30 or PLACET_LEASE_SECONDS.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API, checkpointing the ledger and reaping lost leases in the background."""
    import uvicorn

    from placet.api.app import create_app

    if not 0 < port < 65536:
        raise InputError("--port", "must be between 1 and 65535")
    settings = settings_for(data_dir)
    if policy is not None:
        from dataclasses import replace

        settings = replace(settings, policy_dir=policy)
    if lease_seconds is not None:
        from dataclasses import replace

        if not 0 < lease_seconds <= 86400:
            raise InputError("--lease-seconds", "must be more than 0 and at most 86400")
        settings = replace(settings, lease_seconds=lease_seconds)
    cp = open_plane_with(settings)
    stop = threading.Event()
    upkeep = threading.Thread(target=cp.run_upkeep, args=(stop,), name="upkeep", daemon=True)
    upkeep.start()
    setup_logging(log_level)
    try:
        uvicorn.run(create_app(cp), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        stop.set()
        upkeep.join(timeout=5)
        cp.close()


@principal_app.command("add")
def principal_add(
    name: Annotated[str, typer.Argument(help="Unique name, e.g. alice or deploy-bot.")],
    kind: Annotated[str, typer.Option("--kind", help="human, agent or runner.")],
    owner: Annotated[
        str | None, typer.Option(help="The human answerable for an agent or runner.")
    ] = None,
    team: Annotated[
        list[str] | None,
        typer.Option("--team", help="Group or team (repeatable; created as a team if new)."),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="Humans: admin, approver, viewer or auditor (repeatable; default viewer).",
        ),
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Register a principal and print its API token (shown once, stored only as a hash).

    Humans hold roles (viewer unless --role says otherwise); agents and runners hold none."""
    principal, token = on_plane(
        data_dir,
        lambda cp: cp.principals.add(name, kind, owner, tuple(team or ()), tuple(role or ())),
    )
    if json:
        print_json(
            {
                "id": principal.id,
                "name": principal.name,
                "kind": principal.kind.value,
                "roles": list(principal.roles),
                "teams": list(principal.teams),
                "token": token,
            }
        )
        return
    roles = f" roles {','.join(principal.roles)}" if principal.roles else ""
    console.print(f"{principal.kind.value} {principal.name} ({principal.id}){roles}")
    console.print(f"token: {token}")
    console.print("Keep it now: placet stores only its hash and cannot show it again.")


@principal_app.command("list")
def principal_list(data_dir: DataDir = None, json: Json = False) -> None:
    """List principals (never tokens)."""
    items = on_plane(data_dir, lambda cp: cp.principals.list())
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "kind": p.kind.value,
            "owner": p.owner,
            "teams": list(p.teams),
            "roles": list(p.roles),
        }
        for p in items
    ]
    if json:
        print_json(rows)
        return
    table = Table("name", "kind", "owner", "teams", "roles", "id")
    for p in items:
        table.add_row(
            p.name, p.kind.value, p.owner or "", ",".join(p.teams), ",".join(p.roles), p.id
        )
    console.print(table)


@principal_app.command("token")
def principal_token(
    name: Annotated[str, typer.Argument(help="The principal's name.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Issue a new token for a principal, revoking its earlier ones."""
    principal, token = on_plane(data_dir, lambda cp: cp.principals.issue_token(name))
    if json:
        print_json({"id": principal.id, "name": principal.name, "token": token})
        return
    console.print(f"token: {token}")


@principal_app.command("roles")
def principal_roles(
    name: Annotated[str, typer.Argument(help="The human's name.")],
    roles: Annotated[
        list[str], typer.Argument(help="Its roles from now on: admin, approver, viewer, auditor.")
    ],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Replace a human's roles (agents and runners hold none)."""
    principal = on_plane(data_dir, lambda cp: cp.principals.set_roles(name, roles, LOCAL_ADMIN))
    if json:
        from placet.service.principals import principal_view

        print_json(principal_view(principal))
        return
    console.print(f"{principal.name}: {', '.join(principal.roles)}")


@principal_app.command("actions")
def principal_actions(
    name: Annotated[str, typer.Argument(help="The agent's name.")],
    kinds: Annotated[
        list[str] | None,
        typer.Argument(help="Action kinds it is built to propose (none: clear them)."),
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Declare what an agent can do (its capabilities, for `placet report permissions`)."""
    view = on_plane(data_dir, lambda cp: cp.principals.set_actions(name, kinds or [], LOCAL_ADMIN))
    if json:
        print_json(view)
        return
    console.print(f"{view['name']}: {', '.join(view['actions']) or '(no actions declared)'}")


@principal_app.command("show")
def principal_show(
    name: Annotated[str, typer.Argument(help="The principal's name.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Show one principal: kind, owner, roles and groups (never its token)."""
    view = on_plane(data_dir, lambda cp: cp.principals.view(name))
    if json:
        print_json(view)
        return
    print_fields(view, ("name", "kind", "id", "owner", "roles", "teams", "created_at"))


@group_app.command("add")
def group_add(
    name: Annotated[str, typer.Argument(help="Unique group name, e.g. payments.")],
    kind: Annotated[str, typer.Option("--kind", help="team or group.")] = "team",
    title: Annotated[str | None, typer.Option(help="A display title.")] = None,
    parent: Annotated[str | None, typer.Option(help="An existing parent group.")] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Create a group or team."""
    group = on_plane(data_dir, lambda cp: cp.principals.add_group(name, kind, title, parent))
    if json:
        print_json(group)
        return
    console.print(f"{group['kind']} {group['name']} created")


@group_app.command("list")
def group_list(data_dir: DataDir = None, json: Json = False) -> None:
    """List groups and teams with their members."""
    items = on_plane(data_dir, lambda cp: cp.principals.list_groups())
    if json:
        print_json(items)
        return
    table = Table("name", "kind", "title", "parent", "members", "source")
    for g in items:
        table.add_row(
            g["name"],
            g["kind"],
            g["title"] or "",
            g["parent"] or "",
            ",".join(g["members"]),
            g["source"],
        )
    console.print(table)


@group_app.command("show")
def group_show(
    name: Annotated[str, typer.Argument(help="The group's name.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Show one group and its members."""
    group = on_plane(data_dir, lambda cp: cp.principals.get_group(name))
    if json:
        print_json(group)
        return
    print_fields(group, ("name", "kind", "title", "parent", "source", "created_at", "members"))


@group_app.command("remove")
def group_remove(
    name: Annotated[str, typer.Argument(help="The group's name.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Delete a group and every membership in it."""
    report = on_plane(data_dir, lambda cp: cp.principals.remove_group(name))
    if json:
        print_json(report)
        return
    gone = report["memberships_removed"]
    console.print(f"removed {name} ({len(gone)} membership(s) ended)")


@group_app.command("import")
def group_import(data_dir: DataDir = None, json: Json = False) -> None:
    """Create groups and memberships from the current graph's teams (Backstage Groups/Users).

    Members that are not registered humans are listed, not created."""

    def imported(cp: ControlPlane) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        report = cp.principals.import_groups_from_graph(cp.graph)
        names = set(report["groups"])
        return report, [g for g in cp.principals.list_groups() if g["name"] in names]

    report, groups = on_plane(data_dir, imported)
    if json:
        print_json(report)
        return
    table = Table("group", "parent", "members")
    for g in groups:
        table.add_row(g["name"], g["parent"] or "", ",".join(g["members"]))
    console.print(table)
    console.print(
        f"groups created {report['groups_created']}, updated {report['groups_updated']}, "
        f"memberships added {report['memberships_added']}"
    )
    if report["unknown_users"]:
        console.print(f"not registered (skipped): {', '.join(report['unknown_users'])}")


@member_app.command("add")
def member_add(
    group: Annotated[str, typer.Argument(help="The group's name.")],
    principal: Annotated[str, typer.Argument(help="The principal's name.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Make a principal a member of a group."""
    view = on_plane(data_dir, lambda cp: cp.principals.add_member(group, principal))
    if json:
        print_json(view)
        return
    console.print(f"{group}: {', '.join(view['members'])}")


@member_app.command("remove")
def member_remove(
    group: Annotated[str, typer.Argument(help="The group's name.")],
    principal: Annotated[str, typer.Argument(help="The principal's name.")],
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """End a principal's membership of a group."""
    view = on_plane(data_dir, lambda cp: cp.principals.remove_member(group, principal))
    if json:
        print_json(view)
        return
    console.print(f"{group}: {', '.join(view['members']) or '(no members)'}")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(serve)
    app.add_typer(principal_app, name="principal")
    group_app.add_typer(member_app, name="member")
    app.add_typer(group_app, name="group")
