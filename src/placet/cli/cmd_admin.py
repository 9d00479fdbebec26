"""``placet init``, ``placet serve`` and ``placet principal add|list|token``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from placet.cli.common import (
    DataDir,
    Json,
    console,
    open_plane,
    print_json,
    settings_for,
    setup_logging,
)
from placet.domain.errors import InputError
from placet.service.config import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    from placet.service.control_plane import ControlPlane

principal_app = typer.Typer(
    help="Humans, agents and runners, and their API tokens.", no_args_is_help=True
)


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
    team: Annotated[list[str] | None, typer.Option("--team", help="Team (repeatable).")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="Role (repeatable).")] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Register a principal and print its API token (shown once, stored only as a hash)."""
    cp = open_plane(data_dir)
    try:
        principal, token = cp.principals.add(
            name, kind, owner, tuple(team or ()), tuple(role or ())
        )
    finally:
        cp.close()
    if json:
        print_json(
            {
                "id": principal.id,
                "name": principal.name,
                "kind": principal.kind.value,
                "token": token,
            }
        )
        return
    console.print(f"{principal.kind.value} {principal.name} ({principal.id})")
    console.print(f"token: {token}")
    console.print("Keep it now: placet stores only its hash and cannot show it again.")


@principal_app.command("list")
def principal_list(data_dir: DataDir = None, json: Json = False) -> None:
    """List principals (never tokens)."""
    cp = open_plane(data_dir)
    try:
        items = cp.principals.list()
    finally:
        cp.close()
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
    cp = open_plane(data_dir)
    try:
        principal, token = cp.principals.issue_token(name)
    finally:
        cp.close()
    if json:
        print_json({"id": principal.id, "name": principal.name, "token": token})
        return
    console.print(f"token: {token}")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(serve)
    app.add_typer(principal_app, name="principal")
