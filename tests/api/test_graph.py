"""/v1/graph over HTTP: imports (JSON and multipart), reads, queries, refusals."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import World

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MANIFESTS = DATA / "online-boutique" / "kubernetes-manifests.yaml"


def client(world: World, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=world.server.url, headers=headers, timeout=60)


def test_import_query_and_read(world: World) -> None:
    with client(world, world.tokens.admin) as human:
        response = human.post(
            "/v1/graph/imports",
            json={
                "source": "boutique",
                "files": [{"path": "k8s/manifests.yaml", "content": MANIFESTS.read_text()}],
            },
        )
        assert response.status_code == 201, response.text
        report = response.json()
        assert report["importers"] == ["kubernetes"] and report["version"]["created"]
        assert any("shoppingassistantservice" in w for w in report["warnings"])
        whole = human.get("/v1/graph").json()
        assert whole["version"]["id"] == report["version"]["id"]
        assert any(n["id"] == "frontend" for n in whole["graph"]["nodes"])
        assert "boutique" in {s["name"] for s in whole["sources"]}
        node = human.get("/v1/graph/nodes/frontend").json()
        assert "internet-facing" in node["tags"]
        assert node["provenance"][0]["file"] == "k8s/manifests.yaml"  # not the temp dir
        blast = human.get("/v1/graph/blast", params={"node": "cartservice"}).json()
        assert "frontend" in {n["id"] for n in blast["nodes"]}
        reach = human.get("/v1/graph/reach", params={"node": "cartservice"}).json()
        assert reach["reachable"] and reach["entry_point"] == "frontend"
        deps = human.get("/v1/graph/dependencies", params={"node": "frontend"}).json()
        assert "cartservice" in {n["id"] for n in deps["nodes"]}
        owners = human.get("/v1/graph/owners", params={"path": ["src/frontend/x.go"]}).json()
        assert owners["paths"][0]["path"] == "src/frontend/x.go"
        dot = human.get("/v1/graph", params={"format": "dot"})
        assert dot.status_code == 200 and dot.text.startswith("digraph")
        assert human.get("/v1/graph/versions").json()["items"][0]["id"] == report["version"]["id"]
        assert "conflicts" in human.get("/v1/graph/conflicts").json()


def test_multipart_import(world: World) -> None:
    overlay = b"placet-graph: v1\nnodes:\n  lonely: {kind: service}\n"
    with client(world, world.tokens.admin) as human:
        response = human.post(
            "/v1/graph/imports",
            data={"source": "multipart"},
            files=[("files", ("overlay/placet-graph.yaml", overlay, "application/yaml"))],
        )
        assert response.status_code == 201, response.text
        assert human.get("/v1/graph/nodes/lonely").status_code == 200


def test_refusals(world: World) -> None:
    with client(world, world.tokens.agent) as agent:
        refused = agent.post(
            "/v1/graph/imports",
            json={"source": "x", "files": [{"path": "a.yaml", "content": "placet-graph: v1\n"}]},
        )
        assert refused.status_code == 403  # agents never redraw the map they act on
        assert agent.get("/v1/graph").status_code == 200
    with client(world, None) as anonymous:
        assert anonymous.get("/v1/graph").status_code == 401
    with client(world, world.tokens.admin) as human:
        before = human.get("/v1/graph/versions").json()["items"]
        bad = human.post(
            "/v1/graph/imports",
            json={
                "source": "bad",
                "files": [
                    {"path": "broken.yaml", "content": "placet-graph: v1\nnodes:\n  a: [1,\n"}
                ],
            },
        )
        assert bad.status_code == 422 and "broken.yaml:" in bad.json()["detail"]
        escape = human.post(
            "/v1/graph/imports",
            json={"source": "bad", "files": [{"path": "../etc/passwd", "content": "x"}]},
        )
        assert escape.status_code == 422 and escape.json()["field"] == "files[0].path"
        nameless = human.post(
            "/v1/graph/imports", json={"files": [{"path": "a.yaml", "content": "x"}]}
        )
        assert nameless.status_code == 422 and nameless.json()["field"] == "source"
        assert human.get("/v1/graph/versions").json()["items"] == before
        assert human.get("/v1/graph/nodes/ghost").status_code == 404
        assert (
            human.get("/v1/graph/blast", params={"node": "frontend", "depth": -1}).status_code
            == 422
        )
