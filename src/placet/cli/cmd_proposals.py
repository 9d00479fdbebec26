"""``placet propose|approve|deny|cancel|status``: act on proposals as a principal."""

from __future__ import annotations

import json as jsonlib
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from placet.cli.common import (
    DataDir,
    Json,
    Server,
    Token,
    backend,
    console,
    describe_window,
    print_json,
)
from placet.domain.errors import InputError

STATE_STYLE = {
    "succeeded": "green",
    "authorized": "cyan",
    "executing": "cyan",
    "verifying": "cyan",
    "pending_approval": "yellow",
    "denied": "red",
    "failed": "red",
    "cancelled": "dim",
    "expired": "dim",
}


def _parse_param(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise InputError("--param", f"{item!r} is not KEY=VALUE")
    try:
        value = jsonlib.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _read_body(path: Path, option: str = "--file") -> dict[str, Any]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise InputError(option, f"cannot read {path}: {exc.strerror}") from None
    try:
        body = jsonlib.loads(text)
    except ValueError as exc:
        raise InputError(option, f"{path} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputError(option, "must hold a JSON object")
    return body


def propose(
    argv: Annotated[
        list[str] | None,
        typer.Argument(help="For kind shell: the program and its arguments (after --)."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Action kind, e.g. shell, restart, deploy.")
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="System Graph node id (repeatable).")
    ] = None,
    environment: Annotated[
        str | None, typer.Option("--env", "--environment", help="e.g. staging, production.")
    ] = None,
    intent: Annotated[str | None, typer.Option(help="Why, in words.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="KEY=VALUE parameter, VALUE as JSON when it parses (repeatable)."
        ),
    ] = None,
    verify: Annotated[
        str | None, typer.Option(help="Verification command, e.g. 'curl -f http://svc/healthz'.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="Read the whole proposal body from a JSON file ('-' for stdin)."
        ),
    ] = None,
    rollback_file: Annotated[
        Path | None,
        typer.Option(
            "--rollback-file",
            help="JSON file with the rollback to file if verification fails"
            " ({kind, targets, parameters, intent, verify?}).",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Replays return the same proposal.")
    ] = None,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Submit a proposal as an agent; prints its id, state and decision."""
    body: dict[str, Any] = _read_body(file) if file else {}
    if kind:
        body["kind"] = kind
    if target:
        body["targets"] = list(target)
    if environment:
        body["environment"] = environment
    if intent:
        body["intent"] = intent
    params = dict(body.get("parameters") or {})
    params.update(_parse_param(p) for p in param or ())
    if argv:
        params["argv"] = list(argv)
    if params or "parameters" in body:
        body["parameters"] = params
    if verify:
        body["verify"] = {"argv": shlex.split(verify)}
    if rollback_file:
        body["rollback"] = _read_body(rollback_file, "--rollback-file")
    result = backend(server, token, data_dir).propose(body, idempotency_key)
    if json:
        print_json(result)
        return
    show(result, server)


def show(p: dict[str, Any], server: str | None = None) -> None:
    """Print one proposal for people."""
    style = STATE_STYLE.get(p["state"], "")
    console.print(
        f"[bold]{p['id']}[/]  [{style}]{p['state']}[/]  {p['kind']} → "
        f"{', '.join(p['targets'])} in {p['environment']}"
    )
    console.print(f"  agent   {p['agent']['name']}   digest {p['digest'][:16]}…")
    if p.get("rollback_of"):
        console.print(f"  rollback of {p['rollback_of']['id']}")
    decision = p.get("decision")
    if decision:
        console.print(f"  policy  {decision['outcome']}: {'; '.join(decision['reasons'])}")
        needs = decision.get("approvals") or {}
        if decision["outcome"] == "require_approval" and needs:
            approvals = [v for v in p.get("votes", []) if v["vote"] == "approve"]
            who = ", ".join(needs.get("from") or []) or "any approver"
            console.print(
                f"  quorum  {len(approvals)} of {needs['min_approvals']} from {who}"
                + (f"; decide by {p['deadline']}" if p.get("deadline") else "")
            )
        window = (decision.get("obligations") or {}).get("change_window")
        if window:
            console.print(f"  window  {describe_window(window)}")
    for vote in p.get("votes", []):
        why = f": {vote['reason']}" if vote.get("reason") else ""
        console.print(f"  {vote['vote']:7} {vote['by']} at {vote.get('at') or '?'}{why}")
    if p.get("reason"):
        console.print(f"  reason  {p['reason']}")
    if p["state"] == "pending_approval":
        where = f" --server {server}" if server else ""
        console.print(f"  approve with: placet approve {p['id']}{where} --token <human token>")


def approve(
    proposal_id: Annotated[str, typer.Argument(help="Proposal id.")],
    digest: Annotated[
        str | None, typer.Option(help="The digest you reviewed (default: the proposal's).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded with the approval).")] = "",
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Approve a pending proposal as a named human (bound to its digest)."""
    result = backend(server, token, data_dir).approve(proposal_id, digest, reason)
    print_json(result) if json else show(result, server)


def deny(
    proposal_id: Annotated[str, typer.Argument(help="Proposal id.")],
    reason: Annotated[str, typer.Option(help="Why (required).")],
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Deny a pending proposal as a named human, with a reason."""
    result = backend(server, token, data_dir).deny(proposal_id, reason)
    print_json(result) if json else show(result, server)


def cancel(
    proposal_id: Annotated[str, typer.Argument(help="Proposal id.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Cancel a proposal that has not started running (its agent or a human)."""
    result = backend(server, token, data_dir).cancel(proposal_id, reason)
    print_json(result) if json else show(result, server)


def status(
    proposal_id: Annotated[str | None, typer.Argument(help="Show one proposal.")] = None,
    state: Annotated[str | None, typer.Option(help="Only proposals in this state.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's proposals.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """List proposals (newest first), or show one."""
    client = backend(server, token, data_dir)
    if proposal_id:
        one = client.get(proposal_id)
        print_json(one) if json else show(one, server)
        return
    items = client.list(state, agent, limit)
    if json:
        print_json(items)
        return
    table = Table("id", "state", "agent", "kind", "env", "targets", "digest")
    for p in items:
        style = STATE_STYLE.get(p["state"], "")
        table.add_row(
            p["id"],
            f"[{style}]{p['state']}[/]",
            p["agent"]["name"],
            p["kind"],
            p["environment"],
            ",".join(p["targets"]),
            p["digest"][:12],
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(propose)
    app.command()(approve)
    app.command()(deny)
    app.command()(cancel)
    app.command()(status)
