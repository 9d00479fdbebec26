"""``placet runner``: a runner process that leases authorized work and executes it.

``placet runner init`` makes the runner's key on its host; ``placet runner register`` is
the admin's side (records the public key and labels, prints the runner's token).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from placet.cli.common import DataDir, Json, console, print_json, setup_logging
from placet.domain.errors import InputError

DEFAULT_KEY_FILE = Path(".placet-runner/runner.key")
# The admin commands' way to a control plane: a server and an admin's token, else the
# local data dir.
AdminServer = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="PLACET_SERVER",
        show_envvar=True,
        help="A placet server; without it the local data dir is used.",
    ),
]
AdminToken = Annotated[
    str | None,
    typer.Option("--token", envvar="PLACET_TOKEN", show_envvar=True, help="An admin's API token."),
]
runner_app = typer.Typer(
    help="Run a runner (with --server), or make (init) and register its identity.",
    invoke_without_command=True,
)


def runner(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar="PLACET_SERVER", show_envvar=True, help="Control plane URL."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="PLACET_TOKEN", show_envvar=True, help="The runner's API token."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            envvar="PLACET_RUNNER_DIR",
            help="The runner's state dir (from `placet runner init`): runner.key, the nonce"
            " store, the control-plane key trusted on first use.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            envvar="PLACET_RUNNER_KEY",
            help="The runner's Ed25519 key (default DIR/runner.key; without --dir,"
            " .placet-runner/runner.key, created 0600 if missing).",
        ),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Directory actions run in.")] = Path("."),
    server_key: Annotated[
        Path | None,
        typer.Option(
            "--control-plane-key",
            "--server-key",
            help="Pin the control plane's public key (PEM or base64); without it the key the"
            " server presents first is recorded in the state dir and pinned (trust on first use).",
        ),
    ] = None,
    lease_wait: Annotated[
        float,
        typer.Option(help="Seconds a lease request waits on the server for work (long poll)."),
    ] = 5.0,
    poll_interval: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 1.0,
    slots: Annotated[
        int,
        typer.Option(
            help="Actions run at a time (1 to 32); a lease request takes as many capsules as"
            " there are free slots."
        ),
    ] = 1,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is authorized now, then exit.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
    allow_env: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-env",
            help="An environment variable name a shell action may set (repeatable).",
        ),
    ] = None,
    allow_url: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-url", help="A URL prefix http actions and checks may call (repeatable)."
        ),
    ] = None,
    redact: Annotated[
        list[str] | None,
        typer.Option(
            "--redact",
            help="A regex whose matches are redacted from output excerpts (repeatable).",
        ),
    ] = None,
) -> None:
    """Lease authorized proposals, verify each signed capsule, run it, report signed statements."""
    if ctx.invoked_subcommand is not None:
        return
    if not server:
        raise InputError("--server", "is required: the control plane URL")
    if not token:
        raise InputError("--token", "is required: the runner's API token")
    if lease_wait < 0:
        raise InputError("--lease-wait", "must be 0 or more seconds")
    if state_dir is not None and key_file is None:
        key_file = state_dir / "runner.key"
        if not key_file.exists():
            raise InputError(
                "--dir", f"{key_file} does not exist: run `placet runner init --dir {state_dir}`"
            )
    key_file = key_file or DEFAULT_KEY_FILE
    if poll_interval <= 0:
        raise InputError("--poll-interval", "must be more than 0")
    if not 1 <= slots <= 32:
        raise InputError("--slots", "must be from 1 to 32 actions at a time")
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
            state_dir=state_dir,
            lease_wait=lease_wait,
            allow_env=allow_env or (),
            allow_urls=allow_url or (),
            redact=redact or (),
            slots=slots,
        )
    except KeyboardInterrupt:
        stop.set()
        return
    if once:
        console.print(f"ran {count} proposal(s)")


@runner_app.command("init")
def init(
    state_dir: Annotated[
        Path, typer.Option("--dir", help="Where to write runner.key (0600) and runner.pub.")
    ] = Path(".placet-runner"),
    json: Json = False,
) -> None:
    """Create the runner's Ed25519 key on this host (it never leaves it); print the public key.

    Idempotent: an existing key is kept (and checked to be private)."""
    from placet.runners.keys import load_or_create_key

    key_path = state_dir / "runner.key"
    existed = key_path.exists()
    key = load_or_create_key(key_path)
    pub_path = state_dir / "runner.pub"
    pub_path.write_text(key.public.b64 + "\n")
    if json:
        print_json(
            {
                "key": str(key_path),
                "public_key_file": str(pub_path),
                "public_key": key.public.b64,
                "keyid": key.keyid,
                "created": not existed,
            }
        )
        return
    verb = "kept" if existed else "created"
    console.print(f"{verb} {key_path} (keyid {key.keyid})")
    console.print(f"public key {key.public.b64} (in {pub_path})")
    console.print(f"next: an admin runs `placet runner register NAME --key {pub_path}`")


@runner_app.command("register")
def register_runner(
    name: Annotated[str, typer.Argument(help="The runner's unique name.")],
    key: Annotated[
        Path, typer.Option("--key", help="The runner's runner.pub (from placet runner init).")
    ],
    owner: Annotated[
        str | None,
        typer.Option(help="The human answerable for the runner (a registered human; required)."),
    ] = None,
    labels: Annotated[
        str, typer.Option(help="Labels, e.g. env=prod,region=eu (a key may repeat).")
    ] = "",
    server: AdminServer = None,
    token: AdminToken = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Admin: register a runner's public key and labels; print its id, name and token (once)."""
    from placet.domain.labels import label_text, parse_label_text
    from placet.runners.keys import load_public_key

    if not owner:
        raise InputError("--owner", "is required: the human answerable for the runner")
    public = load_public_key(key)
    parsed = parse_label_text(labels, "--labels")
    if server:
        from placet.service.client import HttpBackend

        body = {"name": name, "public_key": public.b64, "owner": owner, "labels": parsed}
        result = HttpBackend(server, token).call("POST", "/v1/runners", json=body)
    else:
        from placet.cli.common import open_plane

        cp = open_plane(data_dir)
        try:
            result = cp.runners.enrol(cp.principals, name, public.b64, owner, parsed)
        finally:
            cp.close()
    if json:
        print_json({k: result[k] for k in ("id", "name", "token")})
        return
    console.print(f"registered runner {result['name']} ({result['id']}), owner {owner}")
    console.print(f"key {public.keyid}; labels {label_text(result['labels']) or '(none)'}")
    console.print(f"token {result['token']} (shown once)")


@runner_app.command("labels")
def set_runner_labels(
    name: Annotated[str, typer.Argument(help="The runner's name.")],
    labels: Annotated[
        str,
        typer.Option(
            "--labels", help="The new labels, replacing the old, e.g. env=prod,region=eu."
        ),
    ],
    server: AdminServer = None,
    token: AdminToken = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Admin: replace a runner's labels; capsules are targeted by them from the next lease."""
    from placet.domain.labels import label_text, parse_label_text

    parsed = parse_label_text(labels, "--labels")
    if server:
        from urllib.parse import quote

        from placet.service.client import HttpBackend

        path = f"/v1/runners/{quote(name, safe='')}/labels"
        result = HttpBackend(server, token).call("PUT", path, json={"labels": parsed})
    else:
        from placet.cli.common import open_plane

        cp = open_plane(data_dir)
        try:
            result = cp.runners.set_labels(name, parsed)
        finally:
            cp.close()
    if json:
        print_json(result)
        return
    console.print(f"runner {result['name']}: labels {label_text(result['labels']) or '(none)'}")


def register(app: typer.Typer) -> None:
    runner_app.callback()(runner)
    app.add_typer(runner_app, name="runner")
