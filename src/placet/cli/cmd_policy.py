"""``placet policy push|rollback|show|history|shadow|test|eval`` and ``placet report``."""

from __future__ import annotations

import getpass
import json as jsonlib
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
    console,
    describe_window,
    on_plane,
    print_json,
)
from placet.domain.errors import InputError

policy_app = typer.Typer(
    help="Policy bundles: push, roll back, shadow, test and what-if.", no_args_is_help=True
)
report_app = typer.Typer(help="Governance reports.", no_args_is_help=True)


def _operator() -> str:
    """Who acts when the CLI works on the local data dir (it holds the database itself)."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:operator"


def _call(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from placet.service.client import HttpBackend

    return HttpBackend(server, token).call(method, path, **kwargs)


def _read_json(path: Path, option: str) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise InputError(option, f"cannot read {path}: {exc.strerror}") from None
    try:
        return jsonlib.loads(text)
    except ValueError as exc:
        raise InputError(option, f"{path} is not valid JSON: {exc}") from None


def _show_bundle(label: str, bundle: dict[str, Any] | None) -> None:
    if bundle is None:
        console.print(f"{label:9} (none)")
        return
    where = "packaged default" if bundle.get("packaged") else f"id {bundle['id']}"
    by = f" by {bundle['author']} at {bundle['created_at']}" if bundle.get("author") else ""
    console.print(f"{label:9} {bundle['name']}  digest {bundle['digest'][:16]}…  {where}{by}")


@policy_app.command("push")
def push(
    directory: Annotated[Path, typer.Argument(help="Directory of .rego files (the bundle).")],
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Evaluate beside the enforcing bundle; never enforce.")
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Bundle name (default: the directory's).")
    ] = None,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Store a versioned bundle and put it in force (or in shadow). It must compile."""
    if server:
        from placet.policy.bundle import read_rego_files
        from placet.policy.errors import PolicyError

        try:
            files = read_rego_files(directory, str(directory))
        except PolicyError as exc:
            raise InputError("DIR", str(exc)) from None
        body = {
            "name": name or directory.resolve().name,
            "shadow": shadow,
            "files": {path: data.decode() for path, data in files.items()},
        }
        record = _call(server, token, "POST", "/v1/policy/bundles", json=body)
    else:
        record = on_plane(
            data_dir,
            lambda cp: cp.policies.push_directory(
                directory, author=_operator(), shadow=shadow, name=name
            ),
        )
    if json:
        print_json(record)
        return
    mode = "shadowing" if record["mode"] == "shadow" else "enforcing"
    console.print(
        f"pushed {record['name']} ({len(record['files'])} files), digest {record['digest']}"
    )
    console.print(f"now {mode}: bundle {record['id']}")


@policy_app.command("rollback")
def rollback(
    to: Annotated[
        str | None, typer.Option("--to", help="Bundle id or digest prefix (default: previous).")
    ] = None,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Put the previously pushed enforcing bundle (or --to) back in force."""
    if server:
        body = {"to": to} if to else {}
        result = _call(server, token, "POST", "/v1/policy/rollback", json=body)
    else:
        result = on_plane(data_dir, lambda cp: cp.policies.rollback(_operator(), to))
    if json:
        print_json(result)
        return
    which = result["enforcing"] or "the packaged default"
    console.print(f"enforcing: {result['name']} ({which}), digest {result['digest']}")


@policy_app.command("show")
def show(
    server: Server = None, token: Token = None, data_dir: DataDir = None, json: Json = False
) -> None:
    """The enforcing and the shadow bundle."""
    if server:
        heads = _call(server, token, "GET", "/v1/policy")
    else:
        heads = on_plane(data_dir, lambda cp: cp.policies.heads())
    if json:
        print_json(heads)
        return
    _show_bundle("enforcing", heads["enforcing"])
    _show_bundle("shadow", heads["shadow"])


@policy_app.command("history")
def history(
    limit: Annotated[int, typer.Option(help="At most this many changes.")] = 100,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Every push, rollback and shadow change, newest first."""
    if server:
        items = _call(server, token, "GET", "/v1/policy/history", params={"limit": limit})["items"]
    else:
        items = on_plane(data_dir, lambda cp: cp.policies.history(limit))
    if json:
        print_json(items)
        return
    table = Table("at", "mode", "action", "bundle", "name", "digest", "author")
    for item in items:
        table.add_row(
            item["at"],
            item["mode"],
            item["action"],
            item["bundle_id"] or "(default)",
            item["name"] or "",
            (item["digest"] or "")[:16],
            item["author"],
        )
    console.print(table)


@policy_app.command("shadow")
def shadow_report(
    all_decisions: Annotated[
        bool, typer.Option("--all", help="List every shadow decision, not only differences.")
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Stop shadow evaluation.")] = False,
    bundle: Annotated[
        str | None, typer.Option(help="A shadow bundle id (default: the current one).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 100,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Where the shadow bundle would have decided differently from the enforcing one."""
    if clear:
        if server:
            _call(server, token, "DELETE", "/v1/policy/shadow")
        else:
            on_plane(data_dir, lambda cp: cp.policies.clear_shadow(_operator()))
        console.print("shadow evaluation stopped (its recorded decisions are kept)")
        return
    if server:
        params: dict[str, Any] = {"all": all_decisions, "limit": limit}
        if bundle:
            params["bundle"] = bundle
        report = _call(server, token, "GET", "/v1/policy/shadow", params=params)
    else:
        report = on_plane(
            data_dir, lambda cp: cp.policies.shadow_report(bundle, not all_decisions, limit)
        )
    if json:
        print_json(report)
        return
    _show_bundle("shadow", report["bundle"])
    console.print(
        f"{report['evaluated']} proposals evaluated, {report['differing']} decided differently"
    )
    table = Table("proposal", "enforced", "shadow would", "reasons / error")
    for item in report["items"]:
        table.add_row(
            item["proposal_id"],
            item["enforced"] or "",
            item["shadow"] or "error",
            item["error"] or "; ".join(item["reasons"]),
        )
    console.print(table)


@policy_app.command("test")
def test(
    directory: Annotated[Path, typer.Argument(help="Bundle directory with *_test.rego files.")],
    timeout: Annotated[
        float, typer.Option(help="Give up after this many seconds (the tests run apart).")
    ] = 120.0,
    json: Json = False,
) -> None:
    """Run the bundle's Rego unit tests (rules named test_*) and print a pass/fail table.

    Exit 0 when every test passes, 1 when one fails or errs (or the engine crashes)."""
    from placet.policy.bundle import read_rego_files
    from placet.policy.errors import PolicyError
    from placet.policy.testing import TestRunFailed, report_as_dict, run_tests_isolated

    if timeout <= 0:
        raise InputError("--timeout", "must be more than 0")
    try:  # a bundle that cannot be read is the caller's mistake: exit 2
        read_rego_files(directory, str(directory), tests=True)
    except PolicyError as exc:
        raise InputError("DIR", str(exc)) from None
    try:
        report = run_tests_isolated(directory, timeout)
    except TestRunFailed:
        raise  # our failure (exit 1), with the test that was running
    except PolicyError as exc:
        raise InputError("DIR", str(exc)) from None
    if json:
        print_json(report_as_dict(report))
    else:
        table = Table("file", "package", "test", "result", "ms", "detail")
        for r in report.results:
            style = "green" if r.outcome == "pass" else "red"
            table.add_row(
                r.file,
                r.package,
                r.name,
                f"[{style}]{r.outcome}[/]",
                f"{r.seconds * 1000:.2f}",
                r.message,
            )
        console.print(table)
        counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items()))
        verdict = "ok" if report.ok else "FAILED"
        console.print(f"{len(report.results)} tests: {counts or 'none found'} — {verdict}")
    if not report.ok:
        raise typer.Exit(1)


@policy_app.command("eval")
def evaluate(
    input_file: Annotated[
        Path, typer.Option("--input", help="Input document (JSON file, or - for stdin).")
    ],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Evaluate this bundle directory instead of the stored one."),
    ] = None,
    bundle: Annotated[
        str | None,
        typer.Option(help="A stored bundle id / digest prefix, or 'shadow' (default: enforcing)."),
    ] = None,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """What-if: the decision for an input document (nothing is recorded)."""
    document = _read_json(input_file, "--input")
    if not isinstance(document, dict):
        raise InputError("--input", "must hold a JSON object (an input document)")
    if directory is not None:
        from placet.policy.bundle import PolicyBundle
        from placet.policy.errors import PolicyError
        from placet.service.policies import what_if

        try:
            loaded = PolicyBundle.load(directory)
        except PolicyError as exc:
            raise InputError("--dir", str(exc)) from None
        answer = what_if(loaded, document)
    elif server:
        answer = _call(
            server, token, "POST", "/v1/policy/eval", json={"input": document, "bundle": bundle}
        )
    else:
        answer = on_plane(data_dir, lambda cp: cp.policies.evaluate(document, bundle))
    if json:
        print_json(answer)
        return
    console.print(f"bundle   {answer['bundle']['name']}  digest {answer['bundle']['digest'][:16]}…")
    console.print(f"outcome  {answer['outcome']}")
    if "error" in answer:
        console.print(f"error    {answer['error']}")
        return
    decision = answer["decision"]
    for reason in decision["reasons"]:
        console.print(f"reason   {reason}")
    needs = decision["approvals"]
    if answer["outcome"] == "require_approval":
        who = ", ".join(needs["from"]) or "any approver"
        console.print(f"needs    {needs['min_approvals']} approval(s) from {who}")
        console.print(f"expires  after {needs['expires_in']} s")
    obligations = decision.get("obligations") or {}
    for key in ("validation", "notify"):
        if obligations.get(key):
            console.print(f"{key:8} {', '.join(obligations[key])}")
    if obligations.get("change_window"):
        console.print(f"window   {describe_window(obligations['change_window'])}")


@report_app.command("permissions")
def permissions(
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Per agent: what it can do against what policy lets it do without a human."""
    if server:
        params = {"agent": agent} if agent else {}
        report = _call(server, token, "GET", "/v1/reports/permissions", params=params)
    else:
        report = on_plane(data_dir, lambda cp: cp.reports.permissions(agent))
    if json:
        print_json(report)
        return
    policy = report["policy"]
    version = (report["graph_version"] or "(no graph)")[:16]
    console.print(f"policy {policy['name']} {policy['digest'][:16]}…  graph {version}")
    table = Table("agent", "kind", "targets", "env", "proposed", "without a human?", "why")
    for entry in report["agents"]:
        for row in entry["capabilities"]:
            verdict = {
                "allow": "[green]yes[/]",
                "deny": "[red]never[/]",
                "failed": "[red]policy error[/]",
            }.get(row["outcome"])
            if verdict is None:
                need = row["approvals"]
                verdict = f"[yellow]no: {need['min_approvals']} approval(s)[/]"
            table.add_row(
                entry["agent"],
                row["kind"],
                ", ".join(row["targets"]) or "(any)",
                row["environment"],
                str(row["proposals"]),
                verdict,
                "; ".join(row["reasons"]),
            )
    console.print(table)
    for entry in report["agents"]:
        s = entry["summary"]
        console.print(
            f"{entry['agent']}: {s['capabilities']} capabilities, {s['autonomous']} without a "
            f"human, {s['needs_human']} need a human, {s['denied']} denied"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.add_typer(report_app, name="report")
