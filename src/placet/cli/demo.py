"""``placet demo``: the whole loop on one machine, in a minute."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from placet.cli.cmd_proposals import show
from placet.cli.common import console
from placet.service.config import DEFAULT_PORT


def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data directory to use (default: a new temporary one)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port for the API on 127.0.0.1.")] = DEFAULT_PORT,
    once: Annotated[
        bool, typer.Option("--once", help="Approve, settle, export and verify, then exit.")
    ] = False,
) -> None:
    """Start a control plane and a runner and drive three proposals: allowed, pending, denied."""
    from placet.service.client import HttpBackend
    from placet.service.demo import drive, export_and_verify, settle, start

    directory = data_dir or Path(tempfile.mkdtemp(prefix="placet-demo-"))
    world = start(directory, port, lambda text: console.print(text, highlight=False))
    try:
        drive(world)
        for p in world.proposals.values():
            show(p, world.url)
        pending = world.proposals["approval"]
        approver = world.tokens["demo-approver"]
        approve_cmd = f"placet approve {pending['id']} --server {world.url} --token {approver}"
        if not once:
            console.print("\nThe production change waits for a human. Approve it with:\n")
            console.print(f"  {approve_cmd}\n", highlight=False, soft_wrap=True)
            console.print(
                f"Watch it with: placet status --server {world.url} --token {approver}",
                highlight=False,
                soft_wrap=True,
            )
            console.print("Serving until Ctrl-C.")
            threading.Event().wait()
            return
        console.print(f"\n$ {approve_cmd}", highlight=False, soft_wrap=True)
        HttpBackend(world.url, approver).approve(pending["id"], pending["digest"])
        checks = export_and_verify(world, settle(world))
    except KeyboardInterrupt:
        console.print("stopping")
        return
    finally:
        world.shutdown()
    table = Table("proposal", "id", "state", "entries", "evidence")
    for c in checks:
        table.add_row(c.name, c.proposal_id, c.state, str(c.entries), c.verdict)
    console.print(table)
    console.print(f"bundles in {directory / 'bundles'}", highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(demo)
