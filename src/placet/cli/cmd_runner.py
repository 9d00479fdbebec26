"""``placet runner``: a runner process that leases authorized work and executes it."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from placet.cli.common import console, setup_logging
from placet.domain.errors import InputError


def runner(
    server: Annotated[
        str,
        typer.Option(
            "--server", envvar="PLACET_SERVER", show_envvar=True, help="Control plane URL."
        ),
    ],
    token: Annotated[
        str,
        typer.Option(
            "--token", envvar="PLACET_TOKEN", show_envvar=True, help="The runner's API token."
        ),
    ],
    key_file: Annotated[
        Path,
        typer.Option(
            "--key-file",
            envvar="PLACET_RUNNER_KEY",
            help="The runner's Ed25519 key (created 0600 if missing).",
        ),
    ] = Path(".placet-runner/runner.key"),
    workdir: Annotated[Path, typer.Option(help="Directory actions run in.")] = Path("."),
    server_key: Annotated[
        Path | None, typer.Option(help="Pin the control plane's public key (PEM or base64).")
    ] = None,
    poll_interval: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 1.0,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is authorized now, then exit.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Lease authorized proposals, verify each signed capsule, run it, report signed statements."""
    if poll_interval <= 0:
        raise InputError("--poll-interval", "must be more than 0")
    if not workdir.is_dir():
        raise InputError("--workdir", f"{workdir} is not a directory")
    from placet.service.runner_host import load_public_key, run_runner

    setup_logging(log_level)
    pinned = load_public_key(server_key) if server_key else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        count = run_runner(
            server,
            token,
            key_file,
            workdir=workdir,
            poll_interval=poll_interval,
            server_key=pinned,
            once=once,
            stop=stop,
        )
    except KeyboardInterrupt:
        stop.set()
        return
    if once:
        console.print(f"ran {count} proposal(s)")


def register(app: typer.Typer) -> None:
    app.command()(runner)
