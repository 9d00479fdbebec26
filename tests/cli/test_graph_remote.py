"""`placet graph ... --server --token`: the same commands through the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server, Tokens, cli

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_graph_commands_over_http(server: Server, tokens: Tokens) -> None:
    remote = ["--server", server.url, "--token", tokens.admin]
    imported = cli(
        "graph", "import", str(DATA / "online-boutique"), "--source", "boutique", "--json", *remote
    )
    assert imported.returncode == 0, imported.stderr
    report = json.loads(imported.stdout)
    assert "kubernetes" in report["importers"] and report["version"]["created"]
    blast = json.loads(cli("graph", "blast", "cartservice", "--json", *remote).stdout)
    assert "frontend" in {n["id"] for n in blast["nodes"]}
    reach = json.loads(cli("graph", "reach", "cartservice", "--json", *remote).stdout)
    assert reach["entry_point"] == "frontend"
    dot = cli("graph", "show", "--format", "dot", *remote)
    assert dot.stdout.startswith("digraph")
    refused = cli(
        "graph",
        "import",
        str(DATA / "online-boutique"),
        "--source",
        "x",
        "--server",
        server.url,
        "--token",
        tokens.agent,
    )
    assert refused.returncode == 2 and "this needs admin" in refused.stderr
