"""The whole loop with real processes: placet serve + placet runner, driven over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SERVER_ENV, Server, Tokens, cli, start_server, stop_server

TERMINAL = {"succeeded", "failed", "denied", "cancelled", "expired"}


def spawn_runner(
    server: Server, token: str, key: Path, work: Path, *, own_group: bool = False
) -> subprocess.Popen[bytes]:
    """A real `placet runner` process polling ``server``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    args = [
        "runner",
        "--server",
        server.url,
        "--token",
        token,
        "--key-file",
        str(key),
        "--workdir",
        str(work),
        "--poll-interval",
        "0.1",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "placet", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=own_group,
    )


@pytest.fixture
def runner(server: Server, tokens: Tokens, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    work = tmp_path / "work"
    work.mkdir()
    process = spawn_runner(server, tokens.runner, tmp_path / "runner.key", work)
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_state(
    c: httpx.Client, proposal_id: str, states: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = c.get(f"/v1/proposals/{proposal_id}").json()
        if body["state"] in states:
            return body
        assert body["state"] not in TERMINAL - states, body
        assert time.monotonic() < deadline, f"stuck in {body['state']}"
        c.get("/healthz")  # a round trip paces the poll without sleeping


def shell(env: str, argv: list[str], verify: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "shell",
        "targets": ["svc"],
        "environment": env,
        "intent": "e2e",
        "parameters": {"argv": argv},
    }
    if verify:
        body["verify"] = {"argv": verify}
    return body


def test_allowed_approved_denied_and_failed(
    server: Server, tokens: Tokens, runner: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    marker = tmp_path / "work" / "ran.txt"
    py = sys.executable
    agent = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"})
    human = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"})

    allowed = agent.post(
        "/v1/proposals",
        json=shell(
            "staging",
            [py, "-c", f"open({str(marker)!r}, 'a').write('x')"],
            [py, "-c", f"import os,sys; sys.exit(0 if os.path.exists({str(marker)!r}) else 1)"],
        ),
    ).json()
    gated = agent.post("/v1/proposals", json=shell("production", [py, "-c", "print(1)"])).json()
    denied = agent.post(
        "/v1/proposals",
        json={"kind": "drop_database", "targets": ["db"], "environment": "staging", "intent": "no"},
    ).json()
    failing = agent.post(
        "/v1/proposals", json=shell("staging", [py, "-c", "raise SystemExit(3)"])
    ).json()
    bad_verify = agent.post(
        "/v1/proposals",
        json=shell("staging", [py, "-c", "print(1)"], [py, "-c", "raise SystemExit(1)"]),
    ).json()

    assert denied["state"] == "denied" and denied["decision"]["outcome"] == "deny"
    assert gated["state"] == "pending_approval"
    assert wait_state(human, allowed["id"], TERMINAL)["state"] == "succeeded"
    assert marker.read_text() == "x"  # ran exactly once
    assert wait_state(human, failing["id"], TERMINAL)["state"] == "failed"
    assert wait_state(human, bad_verify["id"], TERMINAL)["state"] == "failed"
    # the gated one did not run while pending
    assert human.get(f"/v1/proposals/{gated['id']}").json()["state"] == "pending_approval"
    approved = human.post(f"/v1/proposals/{gated['id']}/approve", json={"digest": gated["digest"]})
    assert approved.status_code == 200, approved.text
    assert wait_state(human, gated["id"], TERMINAL)["state"] == "succeeded"

    for item, state in [
        (allowed, "succeeded"),
        (gated, "succeeded"),
        (denied, "denied"),
        (failing, "failed"),
    ]:
        bundle_path = tmp_path / f"{item['id']}.json"
        exported = cli(
            "evidence",
            "export",
            item["id"],
            "-o",
            str(bundle_path),
            "--server",
            server.url,
            "--token",
            tokens.human,
        )
        assert exported.returncode == 0, exported.stderr
        verified = cli(
            "verify",
            str(bundle_path),
            "--json",
            "--key",
            str(server.data_dir / "keys" / "control-plane.pub"),
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        report = json.loads(verified.stdout)
        assert report["ok"] is True and report["final_state"] == state
    assert marker.read_text() == "x"


@pytest.fixture
def short_lease_server(data_dir: Path, tokens: Tokens) -> Iterator[Server]:
    srv = start_server(data_dir, {**SERVER_ENV, "PLACET_LEASE_SECONDS": "2"})
    yield srv
    stop_server(srv)


def test_a_lost_runner_fails_the_proposal_and_it_never_reruns(
    short_lease_server: Server, tokens: Tokens, tmp_path: Path
) -> None:
    server = short_lease_server
    py = sys.executable
    work = tmp_path / "work2"
    work.mkdir()
    marker = work / "started"
    agent = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"})
    human = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"})
    proposal = agent.post(
        "/v1/proposals",
        json=shell(
            "staging",
            [py, "-c", f"open({str(marker)!r},'w').write('1'); import signal; signal.pause()"],
        ),
    ).json()
    process = spawn_runner(server, tokens.runner, tmp_path / "r2.key", work, own_group=True)
    try:
        wait_state(human, proposal["id"], {"executing"})
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline
            human.get("/healthz")
    finally:
        os.killpg(process.pid, 9)  # the runner and its child die without a word
        process.wait()
    final = wait_state(human, proposal["id"], TERMINAL, timeout=60)
    assert final["state"] == "failed"
    assert "runner lost" in final["reason"]
    # a new runner finds nothing to do: the capsule is never run again
    again = cli(
        "runner",
        "--server",
        server.url,
        "--token",
        tokens.runner,
        "--key-file",
        str(tmp_path / "r2.key"),
        "--workdir",
        str(work),
        "--once",
    )
    assert again.returncode == 0, again.stderr
    assert "ran 0" in again.stdout
