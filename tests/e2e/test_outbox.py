"""The control plane goes away mid-run: a real runner process queues its reports in its
outbox and delivers them when a restarted `placet serve` comes back, exactly once."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import SERVER_ENV, Tokens, cli, free_port

from .test_loop import TERMINAL, shell, wait_state


def serve(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`placet serve` on ``port``, healthy before this returns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    env.update({**SERVER_ENV, "PLACET_LEASE_SECONDS": "30"})
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--log-level", "warning"]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "placet", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    url = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        for _ in range(600):
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if client.get(url + "/healthz", timeout=1).status_code == 200:
                    return process
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)
    process.kill()
    raise AssertionError("the server did not become healthy")


def until(condition: Callable[[], bool], runner: subprocess.Popen[bytes], what: str) -> None:
    """Wait for ``condition``, paced by waiting on the runner process (which must not exit)."""
    for _ in range(1200):
        if condition():
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            runner.wait(timeout=0.05)
        assert runner.poll() is None, f"the runner exited while waiting for {what}"
    raise AssertionError(f"timed out waiting for {what}")


def outbox_rows(state: Path) -> list[tuple[str, int, str]]:
    """(stage, sequence, status) of every report in the runner's outbox."""
    path = state / "outbox.sqlite"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            rows = db.execute("SELECT stage, sequence, status FROM reports ORDER BY sequence")
            return [(str(a), int(b), str(c)) for a, b, c in rows.fetchall()]
        except sqlite3.OperationalError:  # the runner has not created the table yet
            return []


def ledger_stages(data_dir: Path, proposal_id: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(data_dir / "placet.db", timeout=30)) as db:
        rows = db.execute(
            "SELECT stage FROM ledger_entries WHERE proposal_id = ? ORDER BY leaf_index",
            (proposal_id,),
        ).fetchall()
    return [str(row[0]) for row in rows]


def spawn_runner(
    url: str, token: str, state: Path, work: Path, log: Path
) -> subprocess.Popen[bytes]:
    """A real `placet runner` process with state dir ``state``, logging to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACET_")}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                sys.executable, "-m", "placet", "runner", "--server", url, "--token", token,
                "--dir", str(state), "--workdir", str(work), "--poll-interval", "0.1",
                "--lease-wait", "1", "--log-level", "warning",
            ],
            env=env, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip


def waiting_action(work: Path) -> dict[str, Any]:
    """A shell proposal whose action touches work/started, runs until work/go exists, then
    writes work/done; its verification checks work/done."""
    started, go, done = work / "started", work / "go", work / "done"
    action = (
        "import pathlib, time\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.02)\n"
        f"pathlib.Path({str(done)!r}).write_text('1')\n"
    )
    check = f"import pathlib, sys; sys.exit(0 if pathlib.Path({str(done)!r}).exists() else 1)"
    return shell("staging", [sys.executable, "-c", action], [sys.executable, "-c", check])


def test_reports_queued_while_the_server_is_down_arrive_exactly_once(
    data_dir: Path, tokens: Tokens, tmp_path: Path
) -> None:
    state, work = tmp_path / "edge", tmp_path / "work"
    work.mkdir()
    made = cli("runner", "init", "--dir", str(state))
    assert made.returncode == 0, made.stderr
    port = free_port()
    server_log, runner_log = tmp_path / "server.log", tmp_path / "runner.log"
    server = serve(data_dir, port, server_log)
    url = f"http://127.0.0.1:{port}"
    runner = spawn_runner(url, tokens.runner, state, work, runner_log)
    started, go, done = work / "started", work / "go", work / "done"
    body = waiting_action(work)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens.agent}"}) as c:
            proposal = c.post("/v1/proposals", json=body).json()
        proposal_id = proposal["id"]
        assert proposal["state"] == "authorized", proposal

        until(started.exists, runner, "the action to start")
        server.terminate()  # the control plane goes away mid-run
        server.wait(timeout=30)
        go.touch()  # the action finishes while nobody can hear the runner
        until(
            lambda: ("execution", 1, "pending") in outbox_rows(state),
            runner,
            "the execution report to be queued",
        )
        assert ledger_stages(data_dir, proposal_id).count("execution") == 0

        server = serve(data_dir, port, server_log)  # back, same data dir and port
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens.human}"}) as h:
            final = wait_state(h, proposal_id, TERMINAL)
        assert final["state"] == "succeeded", final
        until(
            lambda: [s for _, _, s in outbox_rows(state)] == ["delivered", "delivered"],
            runner,
            "both reports to be settled",
        )
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)
    stages = ledger_stages(data_dir, proposal_id)
    assert stages.count("execution") == 1, stages
    assert stages.count("verification") == 1, stages
    assert outbox_rows(state) == [("execution", 1, "delivered"), ("verification", 2, "delivered")]
    said = runner_log.read_text()
    assert "execution report queued in the outbox" in said, said
    assert "execution report delivered after" in said, said
    assert done.read_text() == "1"


def test_a_report_queued_before_a_runner_restart_is_delivered_once_by_the_next_process(
    data_dir: Path, tokens: Tokens, tmp_path: Path
) -> None:
    state, work = tmp_path / "edge", tmp_path / "work"
    work.mkdir()
    assert cli("runner", "init", "--dir", str(state)).returncode == 0
    port = free_port()
    server_log, runner_log = tmp_path / "server.log", tmp_path / "runner.log"
    server = serve(data_dir, port, server_log)
    url = f"http://127.0.0.1:{port}"
    runner = spawn_runner(url, tokens.runner, state, work, runner_log)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens.agent}"}) as c:
            proposal_id = c.post("/v1/proposals", json=waiting_action(work)).json()["id"]
        until((work / "started").exists, runner, "the action to start")
        server.terminate()
        server.wait(timeout=30)
        (work / "go").touch()
        until(
            lambda: ("execution", 1, "pending") in outbox_rows(state),
            runner,
            "the execution report to be queued",
        )
        runner.terminate()  # the runner stops too, its report still undelivered
        assert runner.wait(timeout=30) == 0, runner_log.read_text()
        assert outbox_rows(state) == [("execution", 1, "pending")]

        server = serve(data_dir, port, server_log)
        runner = spawn_runner(url, tokens.runner, state, work, runner_log)
        until(
            lambda: outbox_rows(state) == [("execution", 1, "delivered")],
            runner,
            "the new runner process to deliver the queued report",
        )
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens.human}"}) as h:
            # the execution was recorded; the verification died with the first process, so
            # the proposal waits in verifying until its lease runs out (runner lost)
            assert h.get(f"/v1/proposals/{proposal_id}").json()["state"] == "verifying"
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)
    assert ledger_stages(data_dir, proposal_id).count("execution") == 1
    assert "report stays in the outbox" in runner_log.read_text()
