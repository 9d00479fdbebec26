"""A failing post-condition files the declared rollback, which policy decides and a runner runs:
real `placet serve` and `placet runner` processes, driven over HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, Tokens
from tests.e2e.test_loop import TERMINAL, spawn_runner, wait_state


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


def test_a_failed_verify_files_a_linked_rollback_that_policy_allows_and_a_runner_runs(
    server: Server, tokens: Tokens, runner: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    undone = work / "undone.txt"
    py = sys.executable
    agent = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"})
    human = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"})
    rollback = {
        "kind": "shell",
        "targets": ["svc"],
        "parameters": {"argv": [py, "-c", f"open({str(undone)!r}, 'a').write('undone')"]},
        "intent": "put the old version back",
    }
    answer = agent.post(
        "/v1/proposals",
        json={
            "kind": "shell",
            "targets": ["svc"],
            "environment": "staging",
            "intent": "deploy the new version",
            "parameters": {"argv": [py, "-c", "print('deployed')"]},
            "verify": {"argv": ["false"], "retry_for": 0.3, "interval": 0.1},
            "rollback": rollback,
        },
    )
    assert answer.status_code == 201, answer.text
    original = answer.json()
    assert original["rollback"] == {**rollback, "scope": []}

    failed = wait_state(human, original["id"], TERMINAL)
    assert failed["state"] == "failed"
    assert failed["reason"].startswith("verification failed")
    filed = [
        p
        for p in human.get("/v1/proposals", params={"agent": "bot"}).json()["items"]
        if p.get("rollback_of")
    ]
    assert len(filed) == 1
    link = filed[0]
    assert link["rollback_of"] == {"id": original["id"], "digest": original["digest"]}
    assert f"rollback filed as proposal {link['id']}" in failed["reason"]
    assert link["agent"] == original["agent"] and link["environment"] == "staging"
    assert link["decision"]["outcome"] == "allow"  # the default policy allows shell in staging

    done = wait_state(human, link["id"], TERMINAL)
    assert done["state"] == "succeeded"
    assert done["rollback_of"] == link["rollback_of"]
    assert undone.read_text() == "undone"  # the rollback ran, exactly once
    # the agent sees its own rollback proposal too
    assert agent.get(f"/v1/proposals/{link['id']}").json()["rollback_of"] == link["rollback_of"]
