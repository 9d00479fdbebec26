"""`placet graph ...`: import with progress, blast and reach as JSON, drawings, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import cli

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_import_blast_reach_show(data_dir: Path) -> None:
    d = ["--data-dir", str(data_dir)]
    imported = cli("graph", "import", str(DATA / "online-boutique"), "--source", "boutique", *d)
    assert imported.returncode == 0, imported.stderr
    assert "kubernetes" in imported.stdout
    assert "warning:" in imported.stderr and "shoppingassistantservice" in imported.stderr
    blast = json.loads(cli("graph", "blast", "cartservice", "--json", *d).stdout)
    assert set(blast) >= {"version", "targets", "nodes", "tags", "owners"}
    assert blast["targets"] == ["cartservice"]
    by_id = {n["id"]: n for n in blast["nodes"]}
    assert set(by_id["frontend"]) >= {"id", "kind", "distance", "path"}
    shallow = json.loads(cli("graph", "blast", "cartservice", "--depth", "1", "--json", *d).stdout)
    assert all(n["distance"] <= 1 for n in shallow["nodes"])
    reach = json.loads(cli("graph", "reach", "paymentservice", "--json", *d).stdout)
    assert set(reach) >= {"reachable", "entry_point", "path"} and reach["reachable"]
    mermaid = cli("graph", "show", "--format", "mermaid", *d)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart")
    dot = cli("graph", "show", "--format", "dot", *d)
    assert dot.stdout.startswith("digraph")
    assert json.loads(cli("graph", "show", *d).stdout)["nodes"]


def test_bad_input(data_dir: Path, tmp_path: Path) -> None:
    d = ["--data-dir", str(data_dir)]
    broken = tmp_path / "placet-graph.yaml"
    broken.write_text("placet-graph: v1\nnodes:\n  a: {kind: service\n")
    result = cli("graph", "import", str(broken), *d)
    assert result.returncode == 2
    assert re.search(re.escape(str(broken)) + r":\d+: ", result.stderr), result.stderr
    missing = cli("graph", "import", str(tmp_path / "nope"), *d)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unknown = cli("graph", "import", str(broken), "--format", "teleport", *d)
    assert unknown.returncode == 2 and "unknown format" in unknown.stderr
    assert cli("graph", "reach", "ghost", *d).returncode == 2
    assert cli("graph", "show", "--format", "png", *d).returncode == 2


def test_a_directory_of_ten_thousand_files_shows_progress(data_dir: Path, tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    for i in range(100):
        folder = tree / f"pkg{i:03d}"
        folder.mkdir(parents=True)
        for j in range(100):
            (folder / f"notes{j:03d}.txt").write_text(f"plain text {i} {j}\n")
    (tree / "placet-graph.yaml").write_text(
        "placet-graph: v1\nnodes:\n  big-service: {kind: service}\n"
    )
    result = cli(
        "graph", "import", str(tree), "--source", "big", "--data-dir", str(data_dir), timeout=600
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("read ")]
    assert progress[-1] == "read 10001/10001 files" and len(progress) >= 10
    assert "big-service" in json.loads(cli("graph", "show", "--data-dir", str(data_dir)).stdout)[
        "nodes"
    ][0]["id"] or any(
        n["id"] == "big-service"
        for n in json.loads(cli("graph", "show", "--data-dir", str(data_dir)).stdout)["nodes"]
    )


def test_deps_and_owners(data_dir: Path, tmp_path: Path) -> None:
    d = ["--data-dir", str(data_dir)]
    manifests = DATA / "online-boutique" / "kubernetes-manifests.yaml"
    assert cli("graph", "import", str(manifests), "--source", "k8s", *d).returncode == 0
    deps = json.loads(cli("graph", "deps", "checkoutservice", "--json", *d).stdout)
    assert "paymentservice" in {n["id"] for n in deps["nodes"]}
    codeowners = DATA / "online-boutique" / "CODEOWNERS"
    assert cli("graph", "import", str(codeowners), "--source", "owners", *d).returncode == 0
    owners = json.loads(cli("graph", "owners", "src/frontend/main.go", "--json", *d).stdout)
    assert owners["paths"][0]["path"] == "src/frontend/main.go" and owners["owners"]
