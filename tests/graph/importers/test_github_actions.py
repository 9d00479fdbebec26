"""GitHub Actions: Online Boutique's real workflows, and synthetic build/deploy styles."""

from __future__ import annotations

from pathlib import Path

import pytest

from placet.graph.errors import GraphInputError
from placet.graph.importers import github_actions
from placet.graph.model import EdgeKind, ImportResult, NodeKind

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
WORKFLOWS = DATA / "online-boutique" / "github-workflows"
BOUTIQUE_DEPLOYMENTS = {
    "redis-cart",
    "adservice",
    "cartservice",
    "checkoutservice",
    "currencyservice",
    "emailservice",
    "frontend",
    "loadgenerator",
    "paymentservice",
    "productcatalogservice",
    "recommendationservice",
    "shippingservice",
}


@pytest.fixture(scope="module")
def boutique() -> ImportResult:
    return github_actions.parse(sorted(WORKFLOWS.glob("*.yaml")), "boutique-ci")


def _deploys(result: ImportResult, pipeline: str) -> dict[str, int | None]:
    return {
        e.target: e.provenance.line
        for e in result.edges
        if e.source == pipeline and e.kind is EdgeKind.DEPLOYS
    }


def test_one_pipeline_node_per_workflow(boutique: ImportResult) -> None:
    nodes = {n.id: n for n in boutique.nodes}
    assert list(nodes) == ["pipeline:ci-main", "pipeline:ci-pr", "pipeline:deploy-pr"]
    main = nodes["pipeline:ci-main"]
    assert main.kind is NodeKind.PIPELINE
    assert main.name == "Continuous Integration - Main/Release"
    assert main.provenance.line == 15  # after the licence comment
    assert main.provenance.file == str(WORKFLOWS / "ci-main.yaml")
    assert main.provenance.importer == "github_actions"


def test_triggers_and_paths(boutique: ImportResult) -> None:
    nodes = {n.id: n for n in boutique.nodes}
    main = nodes["pipeline:ci-main"].attributes
    assert main["triggers"]["push"]["branches"] == ["main", "release/*"]
    assert main["trigger_paths"] == []  # only paths-ignore filters
    assert "docs/**" in main["trigger_paths_ignore"]
    assert "helm-chart/**" in main["trigger_paths_ignore"]
    pr = nodes["pipeline:ci-pr"].attributes
    assert pr["triggers"]["pull_request"]["branches"] == ["main"]
    deploy = nodes["pipeline:deploy-pr"].attributes
    assert deploy["triggers"] == {
        "workflow_run": {
            "workflows": ["Continuous Integration - Pull Request"],
            "types": ["completed"],
        }
    }


def test_skaffold_run_deploys_inferred_from_kubectl_wait(boutique: ImportResult) -> None:
    main = _deploys(boutique, "pipeline:ci-main")
    assert set(main) == BOUTIQUE_DEPLOYMENTS
    assert set(main.values()) == {112}  # the `skaffold run` line
    edge = next(e for e in boutique.edges if e.target == "checkoutservice")
    assert edge.attributes["inferred"] is True
    assert edge.attributes["jobs"] == ["deployment-tests"]
    assert "deployment/checkoutservice (line 125)" in edge.attributes["how"][0]
    deploy = _deploys(boutique, "pipeline:deploy-pr")
    assert set(deploy) == BOUTIQUE_DEPLOYMENTS
    staged = [e for e in boutique.edges if e.source == "pipeline:deploy-pr"]
    assert all(e.attributes["environments"] == ["gke-staging"] for e in staged)
    assert _deploys(boutique, "pipeline:ci-pr") == {}  # unit tests only


def test_inference_is_reported(boutique: ImportResult) -> None:
    assert [(Path(w.file).name, w.line) for w in boutique.warnings] == [
        ("ci-main.yaml", 112),
        ("deploy-pr.yaml", 116),
    ]
    message = boutique.warnings[0].message
    assert "skaffold run without --module" in message
    assert "12 deployment/<name> references" in message
    assert "redis-cart" in message


def test_jobs_record_source_dirs_and_needs(boutique: ImportResult) -> None:
    nodes = {n.id: n for n in boutique.nodes}
    pr_jobs = nodes["pipeline:ci-pr"].attributes["jobs"]
    # `for GO_PACKAGE in ...; pushd src/$GO_PACKAGE` and `dotnet test src/cartservice/`
    assert pr_jobs["code-tests"]["source_dirs"] == [
        "cartservice",
        "frontend",
        "productcatalogservice",
        "shippingservice",
    ]
    main_jobs = nodes["pipeline:ci-main"].attributes["jobs"]
    assert main_jobs["deployment-tests"]["needs"] == ["code-tests"]
    assert set(main_jobs["deployment-tests"]["deploys"]) == BOUTIQUE_DEPLOYMENTS
    assert main_jobs["code-tests"]["deploys"] == []


def test_detect() -> None:
    for file in WORKFLOWS.glob("*.yaml"):
        assert github_actions.detect(file, file.read_text())
    manifests = DATA / "online-boutique" / "kubernetes-manifests.yaml"
    assert not github_actions.detect(manifests, manifests.read_text())
    assert github_actions.detect(Path("w.yml"), '"on": push\njobs:\n  a: {}\n')


def _write(tmp_path: Path, text: str, name: str = "release.yml") -> Path:
    path = tmp_path / ".github" / "workflows" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


MATRIX = """\
name: release
on:
  push:
    branches: [main]
    paths: ['src/**', 'src/cart/**']
jobs:
  images:
    strategy:
      matrix:
        service: [cart, checkout]
        include:
          - service: payment
    steps:
      - uses: actions/checkout@v4
      - run: docker build -t ghcr.io/o/${{ matrix.service }}:1 src/${{ matrix.service }}
  other:
    environment: {name: production, url: https://shop.example.com}
    steps:
      - name: build the rest
        run: |
          for SVC in "email" 'ads'; do
            docker build src/$SVC
          done
          docker buildx build --push -t registry.example.com/team/frontend:latest .
          skaffold run -m shipping,quote --tag=x
          kubectl -n prod set image deployment/currency app=img:2
          gcloud run deploy recommender --image=x
      - uses: docker/build-push-action@v6
        with:
          context: ./src/catalog
          push: true
"""


def test_direct_builds_and_deploys(tmp_path: Path) -> None:
    file = _write(tmp_path, MATRIX)
    result = github_actions.parse([file], "ci")
    (node,) = result.nodes
    assert node.id == "pipeline:release"
    assert node.source_paths == (".github/workflows/release.yml",)
    assert node.attributes["trigger_paths"] == ["src/**", "src/cart/**"]
    deploys = _deploys(result, "pipeline:release")
    matrix_line = _line(MATRIX, "docker build -t")
    assert {s: deploys[s] for s in ("cart", "checkout", "payment")} == dict.fromkeys(
        ("cart", "checkout", "payment"), matrix_line
    )
    assert deploys["email"] == deploys["ads"] == _line(MATRIX, "docker build src/$SVC")
    assert deploys["frontend"] == _line(MATRIX, "buildx")
    assert deploys["shipping"] == deploys["quote"] == _line(MATRIX, "skaffold run")
    assert deploys["currency"] == _line(MATRIX, "set image")
    assert deploys["recommender"] == _line(MATRIX, "gcloud run")
    assert deploys["catalog"] == _line(MATRIX, "build-push-action")
    assert len(deploys) == 11
    assert all(e.attributes["inferred"] is False for e in result.edges)
    other = [e for e in result.edges if e.attributes["jobs"] == ["other"]]
    assert other and all(e.attributes["environments"] == ["production"] for e in other)
    assert result.warnings == ()


WHOLE = """\
on:
  pull_request:
    paths: ["src/cart/**", "src/checkout/**", "docs/**"]
jobs:
  apply:
    steps:
      - run: kubectl apply -f k8s/
  chart:
    steps:
      - run: helm upgrade --install shop ./chart
  stdin:
    steps:
      - run: |
          cat <<EOF | kubectl apply -f -
          kind: Namespace
          EOF
"""


def test_whole_application_deploys_use_trigger_paths(tmp_path: Path) -> None:
    file = _write(tmp_path, WHOLE, "deploy.yaml")
    result = github_actions.parse([file], "ci")
    deploys = _deploys(result, "pipeline:deploy")
    assert deploys == {"cart": _line(WHOLE, "kubectl apply -f k8s/"), "checkout": 7}
    assert all(e.attributes["inferred"] is True for e in result.edges)
    assert result.edges[0].attributes["jobs"] == ["apply", "chart"]
    assert [w.line for w in result.warnings] == [7, 10]
    assert "src/<service> trigger paths (cart, checkout)" in result.warnings[0].message


def test_whole_application_deploy_without_evidence_warns(tmp_path: Path) -> None:
    text = "on: push\njobs:\n  go:\n    steps:\n      - run: skaffold run\n"
    result = github_actions.parse([_write(tmp_path, text)], "ci")
    assert result.edges == ()
    (warning,) = result.warnings
    assert warning.line == 5
    assert "no edge" in warning.message
    assert result.nodes[0].attributes["triggers"] == {"push": {}}


def test_tests_are_not_deploys(tmp_path: Path) -> None:
    text = (
        "on: [push, pull_request]\njobs:\n  t:\n    steps:\n      - run: go test ./src/cart/...\n"
    )
    result = github_actions.parse([_write(tmp_path, text)], "ci")
    assert result.edges == ()
    assert result.nodes[0].attributes["jobs"]["t"]["source_dirs"] == ["cart"]
    assert result.nodes[0].attributes["triggers"] == {"push": {}, "pull_request": {}}


def test_reusable_workflow_is_a_warning(tmp_path: Path) -> None:
    text = "on: push\njobs:\n  call:\n    uses: ./.github/workflows/build.yml\n"
    result = github_actions.parse([_write(tmp_path, text)], "ci")
    assert [(w.line, "not followed" in w.message) for w in result.warnings] == [(4, True)]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("on: push\njobs:\n  a: b: c\n", 3, "mapping values are not allowed"),
        ("on: push\nsteps: []\n", 1, "no jobs mapping"),
        ("on: push\njobs:\n  a: run this\n", 3, "job a is not a mapping"),
        ("- on\n- jobs\n", None, "one YAML mapping"),
    ],
)
def test_bad_workflows(tmp_path: Path, text: str, line: int | None, problem: str) -> None:
    file = _write(tmp_path, text)
    with pytest.raises(GraphInputError) as caught:
        github_actions.parse([file], "ci")
    assert caught.value.file == str(file)
    assert caught.value.line == line
    assert problem in str(caught.value)
