"""Options, output and backend selection shared by the CLI commands."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from placet.domain.errors import InputError
from placet.service.config import Settings, load_settings

if TYPE_CHECKING:
    from placet.service.client import Backend
    from placet.service.control_plane import ControlPlane

# Piped output is not cut to 80 columns: ids and digests stay whole for scripts and logs.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="PLACET_DATA_DIR",
        show_envvar=True,
        help="Data directory (database, keys, placet.toml). Default: ./.placet",
    ),
]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="PLACET_SERVER",
        show_envvar=True,
        help="URL of a placet server; without it the command works on the local data dir.",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PLACET_TOKEN",
        show_envvar=True,
        help="API token of the principal you act as.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def settings_for(data_dir: Path | None) -> Settings:
    return load_settings(data_dir)


def open_plane(data_dir: Path | None) -> ControlPlane:
    """The local control plane (heavy imports happen here, not at CLI start-up)."""
    from placet.service.control_plane import ControlPlane

    return ControlPlane.open(settings_for(data_dir))


T = TypeVar("T")


def on_plane(data_dir: Path | None, action: Callable[[ControlPlane], T]) -> T:
    """Run ``action`` on the local control plane, closed afterwards whatever happens."""
    cp = open_plane(data_dir)
    try:
        return action(cp)
    finally:
        cp.close()


def print_fields(view: dict[str, Any], keys: Iterable[str]) -> None:
    """One ``key value`` line per key, lists joined with commas (``show`` commands)."""
    for key in keys:
        value = view.get(key)
        shown = ", ".join(value) if isinstance(value, list) else (value or "")
        console.print(f"{key:<10} {shown}")


def describe_window(window: dict[str, Any]) -> str:
    """A change window as people read it: ``mon,tue 08:00-18:00 UTC``."""
    days = ",".join(window["days"])
    return f"{days} {window['start']}-{window['end']} {window['timezone']}"


def backend(server: str | None, token: str | None, data_dir: Path | None) -> Backend:
    """HTTP when a server is named, else the local data dir."""
    from placet.service.client import HttpBackend, LocalBackend

    if server:
        return HttpBackend(server, token)
    return LocalBackend(open_plane(data_dir), token)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def setup_logging(level: str) -> None:
    """Plain log lines on stderr; httpx's per-request lines only at debug level."""
    try:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    except ValueError:
        raise InputError("--log-level", f"unknown level {level!r}") from None
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
