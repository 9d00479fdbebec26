"""``placet evidence export`` and ``placet verify``."""

from __future__ import annotations

import json as jsonlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from placet.cli.common import (
    DataDir,
    Json,
    Server,
    Token,
    backend,
    console,
    err_console,
    print_json,
)
from placet.domain.errors import InputError
from placet.domain.lifecycle import TERMINAL

FINAL_STATES = {s.value for s in TERMINAL}
evidence_app = typer.Typer(help="Evidence bundles.", no_args_is_help=True)


@evidence_app.command("export")
def export(
    proposal_id: Annotated[str, typer.Argument(help="Proposal id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write ('-' for stdout).")],
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Write a proposal's evidence bundle: statements, inclusion proofs, checkpoint, keys."""
    client = backend(server, token, data_dir)
    bundle = client.evidence(proposal_id)
    state = client.get(proposal_id)["state"]
    text = jsonlib.dumps(bundle, indent=2, sort_keys=True) + "\n"
    if str(output) == "-":
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise InputError("--output", f"cannot write {output}: {exc.strerror}") from None
    console.print(
        f"wrote {output}: {len(bundle['entries'])} entries, proposal {proposal_id}", highlight=False
    )
    if state not in FINAL_STATES:
        err_console.print(
            f"note: the proposal is still {state}; its record is incomplete and "
            "`placet verify` will say so until it closes",
            highlight=False,
        )


def verify(
    bundle: Annotated[Path, typer.Argument(help="Bundle file from `placet evidence export`.")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="Trusted control-plane public key (PEM or base64). "
            "Without it the bundle's own key is used.",
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Verify a bundle offline. Exit 0 when every check holds, 1 naming the first failure."""
    from placet.service.offline import EvidenceError, verify_file

    try:
        report = verify_file(bundle, key)
    except EvidenceError as exc:
        if json:
            print_json({"ok": False, "error": str(exc)})
        else:
            sys.stderr.write(f"FAILED: {exc}\n")
        raise typer.Exit(1) from None
    if json:
        print_json({"ok": True, **report.as_dict()})
    else:
        console.print(report.summary(), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")
    app.command()(verify)
