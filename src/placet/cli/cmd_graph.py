"""``placet graph import|show|blast|reach|conflicts|versions``."""

from __future__ import annotations

import json as jsonlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from placet.cli.common import (
    DataDir,
    Json,
    Server,
    Token,
    console,
    err_console,
    open_plane,
    print_json,
)

if TYPE_CHECKING:
    from placet.service.client import HttpGraph
    from placet.service.graph import GraphService

graph_app = typer.Typer(
    help="The System Graph: import sources, query blast radius and reach.", no_args_is_help=True
)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A bar on a terminal; elsewhere (CI logs, pipes) a line at every tenth of the files."""
    if not enabled:
        yield None
        return
    if err_console.is_terminal:
        with Progress(
            TextColumn("reading files"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("files", total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    shown = -1

    def lines(done: int, total: int) -> None:
        nonlocal shown
        tenth = done * 10 // total
        if tenth != shown and (tenth > shown):
            shown = tenth
            sys.stderr.write(f"read {done}/{total} files\n")

    yield lines


def _service(
    data_dir: Path | None, server: str | None = None, token: str | None = None
) -> GraphService | HttpGraph:
    """The HTTP API when a server is named, else the local data dir."""
    if server:
        from placet.service.client import HttpGraph

        return HttpGraph(server, token)
    return open_plane(data_dir).graph


@graph_app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to import.")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format", help="Importer to use for every file (default: detected from content)."
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Name of this source; importing it again replaces its facts (default: the paths).",
        ),
    ] = None,
    data_dir: DataDir = None,
    server: Server = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Import catalogs, manifests, compose files, traces, CODEOWNERS and workflows as one source."""
    service = _service(data_dir, server, token)
    with _progress(enabled=not json) as progress:
        report = service.import_paths(paths, format, source, progress=progress)
    if json:
        print_json(report)
        return
    version = report["version"]
    verb = "new version" if version["created"] else "unchanged, version"
    console.print(
        f"imported {report['files']} files as source {report['source']!r} "
        f"({', '.join(report['importers']) or 'no importer'})",
        highlight=False,
    )
    console.print(
        f"graph: {report['nodes']} nodes, {report['edges']} edges, "
        f"{report['conflicts']} conflicts; {verb} {version['id']} "
        f"(digest {version['digest'][:16]}…)",
        highlight=False,
    )
    for warning in report["warnings"]:
        err_console.print(f"warning: {warning}", highlight=False)


@graph_app.command("show")
def show(
    format: Annotated[str, typer.Option("--format", help="json, dot or mermaid.")] = "json",
    data_dir: DataDir = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Print the current graph as JSON, Graphviz dot or a Mermaid flowchart."""
    shown = _service(data_dir, server, token).show(format)
    if isinstance(shown, str):
        sys.stdout.write(shown if shown.endswith("\n") else shown + "\n")
    else:
        print_json(shown)


@graph_app.command("blast")
def blast(
    nodes: Annotated[list[str], typer.Argument(help="Node ids that would change.")],
    depth: Annotated[int | None, typer.Option(help="At most this many hops.")] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Follow only these edge kinds (repeatable).")
    ] = None,
    data_dir: DataDir = None,
    server: Server = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Who is affected if these nodes change: dependents with distance and one shortest path."""
    result = _service(data_dir, server, token).blast(nodes, depth, kind)
    if json:
        print_json(result)
        return
    _print_blast(result)


def _print_blast(result: dict[str, Any]) -> None:
    table = Table("node", "kind", "distance", "path")
    for n in result["nodes"]:
        table.add_row(n["id"], n["kind"], str(n["distance"]), " → ".join(n["path"]))
    console.print(table)
    console.print(
        f"{len(result['nodes'])} nodes; owners: {', '.join(result['owners']) or '-'}; "
        f"tags: {', '.join(result['tags']) or '-'}",
        highlight=False,
    )


@graph_app.command("deps")
def deps(
    node: Annotated[str, typer.Argument(help="Node id.")],
    depth: Annotated[int | None, typer.Option(help="At most this many hops.")] = None,
    data_dir: DataDir = None,
    server: Server = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """What a node depends on: everything whose change would affect it."""
    result = _service(data_dir, server, token).dependencies(node, depth)
    if json:
        print_json(result)
        return
    _print_blast(result)


@graph_app.command("owners")
def owners(
    paths: Annotated[list[str], typer.Argument(help="Changed file paths (repository-relative).")],
    data_dir: DataDir = None,
    server: Server = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Which nodes hold these changed files, and who owns them (source paths, CODEOWNERS)."""
    result = _service(data_dir, server, token).owners(paths)
    if json:
        print_json(result)
        return
    table = Table("path", "nodes", "owners")
    for item in result["paths"]:
        table.add_row(
            item["path"], ", ".join(item["nodes"]) or "-", ", ".join(item["owners"]) or "-"
        )
    console.print(table)


@graph_app.command("reach")
def reach(
    node: Annotated[str, typer.Argument(help="Node id.")],
    data_dir: DataDir = None,
    server: Server = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Is the node reachable from an internet-facing entry point, and by which path."""
    result = _service(data_dir, server, token).reach(node)
    if json:
        print_json(result)
        return
    if result["reachable"]:
        console.print(
            f"reachable from {result['entry_point']}: {' → '.join(result['path'])}", highlight=False
        )
    else:
        console.print(f"{node} is not reachable from any internet-facing entry point")


@graph_app.command("conflicts")
def conflicts(
    data_dir: DataDir = None, server: Server = None, token: Token = None, json: Json = False
) -> None:
    """Where sources disagree (owners, kinds, tiers, edges); nothing is overwritten."""
    result = _service(data_dir, server, token).conflicts()
    if json:
        print_json(result)
        return
    for c in result["conflicts"]:
        console.print(jsonlib.dumps(c, sort_keys=True), highlight=False)
    console.print(f"{len(result['conflicts'])} conflicts")


@graph_app.command("versions")
def versions(
    data_dir: DataDir = None, server: Server = None, token: Token = None, json: Json = False
) -> None:
    """Every graph version, newest first."""
    items = _service(data_dir, server, token).versions()
    if json:
        print_json(items)
        return
    table = Table("id", "digest", "nodes", "edges", "created")
    for v in items:
        table.add_row(
            v["id"], v["digest"][:16], str(v["node_count"]), str(v["edge_count"]), v["created_at"]
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(graph_app, name="graph")
