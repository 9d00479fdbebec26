"""Races between 8 real ``placet runner`` processes, and a runner killed with SIGKILL.

One ``placet serve --lease-seconds 3`` and 8 runner processes (each with its own key, made
on its own state dir and registered by an admin with the same labels) are shared by the
module. Actions append to files in the test's tmp dir, so what ran, and how often, is read
from the files; the evidence bundles say what the ledger recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from placet.evidence.statements import envelope_payload, parse_statement
from placet.runners.keys import load_or_create_key
from placet.runners.times import utc_now
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from placet.store.tables import principals
from tests.conftest import (
    PYTHON,
    Server,
    Tokens,
    add_principals,
    free_port,
    seed_graph,
    stop_server,
)
from tests.runners.helpers import Fifo, alive, wait_gone

RUNNERS = 8
LEASE_SECONDS = 3
TERMINAL = {"succeeded", "failed", "denied", "cancelled", "expired"}
LABELS = {"env": ["staging"], "pool": ["race"]}


def clean_env() -> dict[str, str]:
    """This process's environment without PLACET_* variables, so the data dir is ours."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}


def within(seconds: float) -> Iterator[int]:
    """Rounds of a bounded wait: yields until ``seconds`` pass, then fails the test."""
    deadline = utc_now() + timedelta(seconds=seconds)
    pause = threading.Event()  # never set: wait() is a bounded pause between probes
    rounds = 0
    while utc_now() < deadline:
        yield rounds
        rounds += 1
        pause.wait(0.05)
    raise AssertionError(f"gave up after {seconds} s")


def serve(data_dir: Path, env: dict[str, str] | None = None) -> Server:
    """``placet serve --lease-seconds LEASE_SECONDS`` on ``data_dir`` (with ``env`` added to
    a clean environment), once it is healthy."""
    port = free_port()
    env = {**clean_env(), "PLACET_CHECKPOINT_SECONDS": "0.2", **(env or {})}  # reap promptly
    with (data_dir.parent / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *(PYTHON, "-m", "placet", "serve", "--data-dir", str(data_dir)),
                *("--port", str(port), "--lease-seconds", str(LEASE_SECONDS)),
                *("--log-level", "warning"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        for _ in within(60):
            assert process.poll() is None, (
                f"placet serve exited: {tail(data_dir.parent / 'serve.log')}"
            )
            try:
                if client.get(url + "/healthz", timeout=1).status_code == 200:
                    return Server(url, process, data_dir)
            except httpx.TransportError:
                pass
    raise AssertionError("unreachable")


class Watching:
    """A proposal's state read through a human's client (``human``), and its final one."""

    human: httpx.Client

    def state(self, proposal_id: str) -> dict[str, Any]:
        response = self.human.get(f"/v1/proposals/{proposal_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def final(self, proposal_id: str, timeout: float = 40) -> dict[str, Any]:
        """The proposal once it is in a terminal state (bounded poll)."""
        for _ in within(timeout):
            body = self.state(proposal_id)
            if body["state"] in TERMINAL:
                return body
        raise AssertionError("unreachable")


@dataclass
class Pool(Watching):
    """The server, the people's clients and the 8 runner processes racing for its work."""

    server: Server
    plane: ControlPlane
    tokens: Tokens
    agent: httpx.Client
    human: httpx.Client
    runners: list[subprocess.Popen[bytes]]

    def propose(self, argv: list[str]) -> str:
        """Submit a shell action in staging (allowed by the default policy); its id."""
        body = {
            "kind": "shell",
            "targets": ["svc"],
            "parameters": {"argv": argv, "runner_selector": {"pool": "race"}},
            "environment": "staging",
            "intent": "race the runners",
        }
        response = self.agent.post("/v1/proposals", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return str(created["id"])

    def stages(self, proposal_id: str) -> list[dict[str, Any]]:
        """Stage and predicate of each statement in the proposal's evidence bundle, in order."""
        response = self.human.get(f"/v1/proposals/{proposal_id}/evidence")
        assert response.status_code == 200, response.text
        out = []
        for item in response.json()["entries"]:
            said = parse_statement(envelope_payload(item["envelope"]))
            out.append({"stage": said.stage.value, "predicate": said.predicate})
        return out


def enrol_runners(plane: ControlPlane, base: Path) -> list[tuple[Path, str]]:
    """Make 8 runner keys on their own state dirs and register them (admin) with LABELS."""
    made = []
    for i in range(RUNNERS):
        state = base / f"runner-{i}"
        key = load_or_create_key(state / "runner.key")
        enrolled = plane.runners.enrol(
            plane.principals, f"racer-{i}", key.public.b64, "olivia", LABELS
        )
        made.append((state, str(enrolled["token"])))
    return made


def spawn(server: Server, token: str, state: Path, work: Path) -> subprocess.Popen[bytes]:
    """A real ``placet runner`` process on its own state dir."""
    argv = [
        *(PYTHON, "-m", "placet", "runner", "--server", server.url, "--token", token),
        *("--dir", str(state), "--workdir", str(work), "--poll-interval", "0.05"),
        *("--lease-wait", "1", "--log-level", "warning"),
    ]
    with (state / "runner.log").open("wb") as log:
        return subprocess.Popen(argv, env=clean_env(), stdout=subprocess.DEVNULL, stderr=log)


def tail(path: Path) -> str:
    """The end of a process's log, for a failure message."""
    return path.read_text(errors="replace")[-1500:] if path.exists() else "(no log)"


def registered(plane: ControlPlane) -> int:
    """How many racers have presented their key and kinds (a runner does so as it starts)."""
    with plane.ctx.read() as conn:
        rows = conn.execute(
            select(principals.c.kinds).where(principals.c.name.like("racer-%"))
        ).all()
    return sum(1 for row in rows if row.kinds)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    base = tmp_path_factory.mktemp("races")
    data_dir = base / "data"
    settings = load_settings(data_dir)
    initialise(settings)
    seed_graph(data_dir)
    plane = ControlPlane.open(settings)
    tokens = add_principals(plane)
    dirs = enrol_runners(plane, base)
    server = serve(data_dir)
    work = base / "work"
    work.mkdir()
    runners = [spawn(server, token, state, work) for state, token in dirs]
    headers = {"Authorization": f"Bearer {tokens.agent}"}
    agent = httpx.Client(base_url=server.url, headers=headers, timeout=30)
    human = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"}, timeout=30
    )
    try:
        for _ in within(60):  # every runner is up and long-polling before any race
            for (state, _), process in zip(dirs, runners, strict=True):
                assert process.poll() is None, f"a runner exited: {tail(state / 'runner.log')}"
            if registered(plane) == RUNNERS:
                break
        yield Pool(server, plane, tokens, agent, human, runners)
    finally:
        for process in runners:
            if process.poll() is None:
                process.terminate()
        for process in runners:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        agent.close()
        human.close()
        stop_server(server)
        plane.close()


def append(path: Path, line: str) -> list[str]:
    """An argv appending ``line`` to ``path`` (one O_APPEND write: lines never interleave)."""
    code = "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)"
    code += "; os.write(fd, (sys.argv[2] + '\\n').encode())"
    return [sys.executable, "-c", code, str(path), line]


def executions(pool: Pool, proposal_id: str) -> list[dict[str, Any]]:
    return [s["predicate"] for s in pool.stages(proposal_id) if s["stage"] == "execution"]


def test_one_capsule_raced_by_eight_runners_runs_exactly_once(pool: Pool, tmp_path: Path) -> None:
    assert all(p.poll() is None for p in pool.runners)
    ran = tmp_path / "ran"
    proposal_id = pool.propose(append(ran, "ran"))
    final = pool.final(proposal_id)
    assert final["state"] == "succeeded", final
    assert ran.read_text() == "ran\n"
    stages = [s["stage"] for s in pool.stages(proposal_id)]
    assert stages.count("capsule") == 1
    assert stages.count("execution") == 1
    assert stages.count("verification") == 1
    (execution,) = executions(pool, proposal_id)
    assert execution["ok"] is True and execution["exit_code"] == 0
    assert execution["runner"]["name"].startswith("racer-")


def test_many_proposals_raced_by_eight_runners_each_run_exactly_once(
    pool: Pool, tmp_path: Path
) -> None:
    count = 40
    ran = tmp_path / "ran"
    ids = [pool.propose(append(ran, f"action-{i}")) for i in range(count)]
    finals = [pool.final(proposal_id) for proposal_id in ids]
    assert [f["state"] for f in finals] == ["succeeded"] * count, finals
    lines = ran.read_text().splitlines()
    assert sorted(lines) == sorted(f"action-{i}" for i in range(count))
    names = set()
    for proposal_id in ids:
        (execution,) = executions(pool, proposal_id)
        assert execution["ok"] is True
        names.add(execution["runner"]["name"])
    assert names <= {f"racer-{i}" for i in range(RUNNERS)}


def test_kill_9_mid_action_fails_the_proposal_and_nothing_runs_twice(
    pool: Pool, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    gate = Fifo(tmp_path / "gate")
    # The action records "<runner pid> <own pid>", then blocks until the test writes a line.
    code = (
        "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)"
        "; os.write(fd, f'{os.getppid()} {os.getpid()}\\n'.encode()); os.close(fd)"
        "; open(sys.argv[2]).readline()"
    )
    action_pid = 0
    try:
        proposal_id = pool.propose([sys.executable, "-c", code, str(marker), str(gate.path)])
        for _ in within(30):
            if marker.exists() and marker.read_text().endswith("\n"):
                break
        runner_pid, action_pid = (int(x) for x in marker.read_text().split())
        victim = next(p for p in pool.runners if p.pid == runner_pid)
        assert pool.state(proposal_id)["state"] == "executing"
        os.kill(runner_pid, signal.SIGKILL)  # the runner dies without a word; its action lives
        victim.wait(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        assert alive(action_pid)

        final = pool.final(proposal_id, timeout=LEASE_SECONDS * 5)
        assert final["state"] == "failed", final
        assert "runner lost" in final["reason"]
        # The other 7 are polling: a later proposal is leased, run and succeeds, and leases
        # go oldest first, so the failed one was never offered again.
        later = tmp_path / "later"
        after = pool.propose(append(later, "later"))
        assert pool.final(after)["state"] == "succeeded"
        assert later.read_text() == "later\n"
        assert len(marker.read_text().splitlines()) == 1
        stages = [s["stage"] for s in pool.stages(proposal_id)]
        assert stages.count("capsule") == 1 and "execution" not in stages
        assert stages[-1] == "closure"
    finally:
        gate.send("go")  # release the orphaned action
        if action_pid:
            assert wait_gone(action_pid, timeout=15)
        gate.close()
    assert len(marker.read_text().splitlines()) == 1
