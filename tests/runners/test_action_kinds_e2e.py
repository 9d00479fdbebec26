"""Every action kind through the whole loop: a real ``placet serve`` and a real
``placet runner`` process, both with the test plugin directory on PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from placet.domain.canonical import digest_of, sha256_hex
from placet.domain.signing import PublicKey, open_envelope
from tests.conftest import SERVER_ENV

from .gitrepo import diff_of, git, make_repo
from .helpers import python
from .localhttp import Local, local_http
from .test_process import Served, ledger, propose, serve, verified, wait_terminal

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
PYTHONPATH = os.pathsep.join([str(PLUGINS), *sys.path])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    with local_http() as local:
        yield local


@pytest.fixture(scope="module")
def plugged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that has the test plugin installed (on its PYTHONPATH)."""
    env = {**SERVER_ENV, "PYTHONPATH": PYTHONPATH}
    yield from serve(tmp_path_factory.mktemp("plugged") / "data", env)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def runner_key(
    plugged: Served, site: Local, work: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A real runner process with allow-lists; yields its key file."""
    state = tmp_path_factory.mktemp("runner")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    env["PYTHONPATH"] = PYTHONPATH
    args = [
        *("--server", plugged.server.url, "--token", plugged.tokens.runner),
        *("--key-file", str(state / "runner.key"), "--workdir", str(work)),
        *("--poll-interval", "0.1", "--log-level", "warning"),
        *("--allow-env", "DEPLOY_TARGET", "--allow-url", site.url + "/api"),
        *("--allow-url", site.url + "/healthz", "--allow-url", site.url + "/status/"),
        *("--redact", r"customer-\d+"),
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "placet", "runner", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield state / "runner.key"
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def body(kind: str, parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "targets": ["svc"],
        "parameters": parameters,
        "environment": "staging",
        "intent": "exercise an action kind end to end",
        **extra,
    }


def run(served: Served, proposal: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Propose, wait until final; the final proposal and the execution predicate."""
    created = propose(served, proposal)
    final = wait_terminal(served, created["id"], timeout=60)
    return final, ledger(served, created["id"])["execution"]["statement"].predicate


def test_a_plugin_kind_is_accepted_and_run_by_a_real_runner(
    plugged: Served, runner_key: Path, work: Path
) -> None:
    parameters = {"name": "note.txt", "text": "written by a plugin"}
    final, execution = run(plugged, body("write-note", parameters))
    assert final["state"] == "succeeded", final
    assert (work / "note.txt").read_text() == "written by a plugin"
    assert execution["kind"] == "write-note"
    assert execution["action_digest"] == digest_of(parameters)
    assert execution["stdout_excerpt"] == "wrote note.txt\n"
    report = verified(plugged, final["id"])
    assert report.final_state == "succeeded" and len(report.runner_keyids) == 1
    envelope = ledger(plugged, final["id"])["execution"]["envelope"]
    open_envelope(envelope, [verified_key(plugged, final["id"])])


def test_a_plugin_kind_with_bad_parameters_is_rejected_at_proposal(plugged: Served) -> None:
    response = plugged.agent.post(
        "/v1/proposals", json=body("write-note", {"name": "../x", "text": "no"})
    )
    assert response.status_code == 422, response.text
    assert "name must be a plain file name" in response.text


def test_git_patch_inside_scope_applies_and_outside_scope_is_refused(
    plugged: Served, runner_key: Path, work: Path
) -> None:
    repo = work / "checkout"
    head = make_repo(repo)
    inside = diff_of(repo, {"src/app.txt": "version = 2\n"})
    command = python("import pathlib; print(pathlib.Path('src/app.txt').read_text())")
    final, execution = run(
        plugged,
        body(
            "git-patch",
            {"repo": "checkout", "base": head, "patch": inside, "command": command},
            scope=["src/"],
        ),
    )
    assert final["state"] == "succeeded", final
    assert (repo / "src" / "app.txt").read_text() == "version = 2\n"
    assert execution["patch_sha256"] == sha256_hex(inside.encode())
    assert execution["argv"] == command and execution["stdout_excerpt"] == "version = 2\n\n"

    git(repo, "commit", "-q", "-am", "applied")
    head = git(repo, "rev-parse", "HEAD").strip()
    outside = diff_of(repo, {"src/app.txt": "version = 3\n", "docs/readme.md": "changed\n"})
    final, execution = run(
        plugged,
        body("git-patch", {"repo": "checkout", "base": head, "patch": outside}, scope=["src/"]),
    )
    assert final["state"] == "failed"
    assert "outside the proposal's scope" in final["reason"]
    assert execution["ok"] is False and execution["argv"] == []
    assert (repo / "docs" / "readme.md").read_text() == "hello\n"
    assert (repo / "src" / "app.txt").read_text() == "version = 2\n"


def test_http_kind_uses_the_runners_allow_list(
    plugged: Served, runner_key: Path, site: Local
) -> None:
    final, execution = run(
        plugged, body("http", {"method": "POST", "url": site.url + "/api/restart", "body": "go"})
    )
    assert final["state"] == "succeeded", final
    assert execution["http_status"] == 200
    assert ("POST", "/api/restart") in [(r[0], r[1]) for r in site.seen.requests]
    final, execution = run(plugged, body("http", {"url": site.url + "/status/503"}))
    assert final["state"] == "failed" and execution["http_status"] == 503
    assert "abc123secret" not in execution["stdout_excerpt"]
    before = len(site.seen.requests)
    final, execution = run(plugged, body("http", {"url": site.url + "/admin"}))
    assert final["state"] == "failed" and "URL allow-list" in final["reason"]
    assert len(site.seen.requests) == before


def test_shell_env_allow_list_redaction_and_an_http_post_condition(
    plugged: Served, runner_key: Path, site: Local
) -> None:
    argv = python("import os; print('target', os.environ['DEPLOY_TARGET'], 'customer-42')")
    verify = {"http": {"url": site.url + "/healthz"}, "retry_for": 30, "interval": 0.1}
    created = propose(
        plugged, body("shell", {"argv": argv, "env": {"DEPLOY_TARGET": "blue"}}, verify=verify)
    )
    final = wait_terminal(plugged, created["id"], timeout=60)
    assert final["state"] == "succeeded", final
    record = ledger(plugged, created["id"])
    execution = record["execution"]["statement"].predicate
    assert execution["stdout_excerpt"] == "target blue [REDACTED]\n"
    check = record["verification"]["statement"].predicate
    assert check["check"] == "http" and check["passed"] is True and check["attempts"] >= 1
    assert check["attempts"] == len(check["history"])
    open_envelope(record["verification"]["envelope"], [verified_key(plugged, created["id"])])

    final, execution = run(plugged, body("shell", {"argv": argv, "env": {"HOME_SECRET": "x"}}))
    assert final["state"] == "failed" and "env allow-list" in final["reason"]


def verified_key(served: Served, proposal_id: str) -> PublicKey:
    """The runner key the bundle carries for ``proposal_id`` (the verifier checked it)."""
    bundle = served.plane.ledger.export(proposal_id)
    keyid = verified(served, proposal_id).runner_keyids[0]
    for key in bundle["keys"]:
        if key["keyid"] == keyid:
            return PublicKey.from_b64(key["public_key"])
    raise AssertionError("the runner key is not in the bundle")
