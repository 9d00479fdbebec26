"""Retries after a lost runner, end to end: a real ``placet serve`` and real runner processes
killed with SIGKILL mid-action.

The policy allows every proposal with ``"retries": 1``. An idempotent plugin kind
(``hold-note`` from tests/plugins) whose runner is lost is requeued once and run to the end
by another runner; lost twice, it fails and never runs a third time. A non-idempotent
``shell`` action under the same policy fails on the first loss and never runs again. The
server and every runner have the plugin on PYTHONPATH, so both know the kind and that it is
idempotent. One server (``--lease-seconds 3``, reaping every 0.2 s) serves the module; each
test starts its own runners, with its tmp dir as their working directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from placet.evidence.statements import envelope_payload, parse_statement
from placet.runners.keys import load_or_create_key
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from tests.conftest import (
    PYTHON,
    Server,
    Tokens,
    add_principals,
    cli,
    seed_graph,
    stop_server,
)
from tests.e2e.test_runner_races import Watching, clean_env, tail, within
from tests.e2e.test_runner_races import serve as races_serve
from tests.runners.helpers import Fifo, alive, wait_gone

LEASE_SECONDS = 3
LOST = LEASE_SECONDS * 5  # a lost lease is reaped within LEASE_SECONDS + 0.2 s
TERMINAL = {"succeeded", "failed", "denied", "cancelled", "expired"}
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
RETRY_ONCE = """package placet
import rego.v1
decision := {
  "outcome": "allow",
  "reasons": ["a lost runner may be replaced once"],
  "retries": 1,
}
"""
# hold-note is declared by a dist-info of its own (written to a tmp dir put on PYTHONPATH
# next to tests/plugins), so the shipped dist-info keeps declaring write-note only.
HOLD_ENTRY_POINTS = "[placet.actions]\nhold-note = placet_test_actions:HoldNote\n"


def plugin_path(base: Path) -> str:
    """A PYTHONPATH on which both test plugin kinds (write-note, hold-note) are installed."""
    info = base / "placet_test_hold-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: placet-test-hold\nVersion: 1.0\n"
        "Summary: declares the hold-note kind of placet_test_actions (retry tests).\n"
    )
    (info / "entry_points.txt").write_text(HOLD_ENTRY_POINTS)
    inherited = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
    return os.pathsep.join([str(base), str(PLUGINS), *inherited])


@dataclass
class Site(Watching):
    """The server, the data dir's control plane (to enrol runners), clients and the plugins."""

    server: Server
    plane: ControlPlane
    tokens: Tokens
    agent: httpx.Client
    human: httpx.Client
    pythonpath: str
    enrolled: int = 0
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment of a placet process that has the test plugins installed."""
        return {**clean_env(), "PYTHONPATH": self.pythonpath}

    def runner(self, base: Path, work: Path) -> Runner:
        """Enrol a new runner (its own key and state dir, labels env=staging) and start its
        real ``placet runner`` process working in ``work``."""
        self.enrolled += 1
        name = f"retrier-{self.enrolled}"
        state = base / name
        key = load_or_create_key(state / "runner.key")
        enrolled = self.plane.runners.enrol(
            self.plane.principals, name, key.public.b64, "olivia", {"env": ["staging"]}
        )
        argv = [
            *(PYTHON, "-m", "placet", "runner", "--server", self.server.url),
            *("--token", str(enrolled["token"]), "--dir", str(state), "--workdir", str(work)),
            *("--poll-interval", "0.05", "--lease-wait", "1", "--log-level", "warning"),
        ]
        with (state / "runner.log").open("wb") as log:
            process = subprocess.Popen(argv, env=self.env(), stdout=subprocess.DEVNULL, stderr=log)
        self.started.append(process)
        return Runner(name, str(enrolled["id"]), key.public.keyid, state, process)

    def propose(self, kind: str, parameters: dict[str, Any]) -> str:
        """Submit an action in staging; the policy allows it at once with one retry."""
        body = {
            "kind": kind,
            "targets": ["svc"],
            "parameters": parameters,
            "environment": "staging",
            "intent": "survive a lost runner",
        }
        response = self.agent.post("/v1/proposals", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        assert created["decision"]["outcome"] == "allow", created
        return str(created["id"])

    def ledger(self, proposal_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Stage and predicate of each statement in the proposal's evidence, in order."""
        response = self.human.get(f"/v1/proposals/{proposal_id}/evidence")
        assert response.status_code == 200, response.text
        out = []
        for item in response.json()["entries"]:
            said = parse_statement(envelope_payload(item["envelope"]))
            out.append((said.stage.value, dict(said.predicate)))
        return out

    def verify(self, proposal_id: str, where: Path) -> dict[str, Any]:
        """Export the bundle with ``placet evidence export`` and check it with ``placet
        verify`` against the pinned control-plane key, both with the plugins installed."""
        bundle = where / f"{proposal_id}.json"
        env = {"PYTHONPATH": self.pythonpath}
        exported = cli(
            *("evidence", "export", proposal_id, "-o", str(bundle)),
            *("--server", self.server.url, "--token", self.tokens.human),
            env=env,
        )
        assert exported.returncode == 0, exported.stdout + exported.stderr
        key = self.server.data_dir / "keys" / "control-plane.pub"
        verified = cli("verify", str(bundle), "--json", "--key", str(key), env=env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        report: dict[str, Any] = json.loads(verified.stdout)
        assert report["ok"] is True and report["key_source"] == "trusted"
        return report


@dataclass
class Runner:
    """One enrolled runner and its process."""

    name: str
    id: str
    keyid: str
    state: Path
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL: the runner dies without a word (no report, no more heartbeats)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def check_alive(self) -> None:
        assert self.process.poll() is None, f"{self.name} exited: {tail(self.state / 'runner.log')}"


def serve(data_dir: Path, pythonpath: str) -> Server:
    """``placet serve --lease-seconds 3`` with the plugins installed, once it is healthy."""
    return races_serve(data_dir, {"PYTHONPATH": pythonpath})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("retries")
    pythonpath = plugin_path(base / "plugins")
    data_dir = base / "data"
    settings = load_settings(data_dir)
    initialise(settings)
    seed_graph(data_dir)
    plane = ControlPlane.open(settings)
    tokens = add_principals(plane)
    policy = base / "retry-once"
    policy.mkdir()
    (policy / "retry.rego").write_text(RETRY_ONCE)
    pushed = cli("policy", "push", str(policy), "--data-dir", str(data_dir), "--json")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    server = serve(data_dir, pythonpath)
    agent = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"}, timeout=30
    )
    human = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"}, timeout=30
    )
    site = Site(server, plane, tokens, agent, human, pythonpath)
    try:
        yield site
    finally:
        stop_runners(site)
        agent.close()
        human.close()
        stop_server(server)
        plane.close()


def stop_runners(site: Site) -> None:
    """Stop every runner process a test started (a test's runners never outlive it)."""
    for process in site.started:
        if process.poll() is None:
            process.terminate()
    for process in site.started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    site.started.clear()


@pytest.fixture
def fresh(site: Site) -> Iterator[Site]:
    """The module's site; the runners a test starts are stopped when it ends."""
    yield site
    stop_runners(site)


def lines_of(path: Path) -> list[str]:
    """The complete lines of ``path`` (none while it does not exist)."""
    if not path.exists():
        return []
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


def wait_lines(path: Path, count: int, runners: list[Runner], timeout: float = 30) -> list[str]:
    """The lines of ``path`` once it has ``count`` of them (the runners must stay up)."""
    for _ in within(timeout):
        for runner in runners:
            runner.check_alive()
        found = lines_of(path)
        if len(found) >= count:
            return found
    raise AssertionError("unreachable")


def hold() -> dict[str, Any]:
    """hold-note parameters: start marker, release file and note (in the runner's workdir)."""
    return {"name": "note", "text": "held and written", "started": "started", "release": "go"}


def stages(ledger: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [stage for stage, _ in ledger]


def only(ledger: list[tuple[str, dict[str, Any]]], stage: str) -> list[dict[str, Any]]:
    return [predicate for name, predicate in ledger if name == stage]


def test_an_idempotent_action_whose_runner_is_killed_is_run_once_more_by_another(
    fresh: Site, tmp_path: Path
) -> None:
    site = fresh
    started = tmp_path / "started"
    first = site.runner(tmp_path, tmp_path)
    proposal_id = site.propose("hold-note", hold())
    assert wait_lines(started, 1, [first]) == [str(first.process.pid)]
    assert site.state(proposal_id)["state"] == "executing"

    first.kill()
    second = site.runner(tmp_path, tmp_path)  # polls while the lost lease runs out
    assert wait_lines(started, 2, [second], timeout=LOST + 30)[1] == str(second.process.pid)
    ledger = site.ledger(proposal_id)
    assert stages(ledger)[-3:] == ["capsule", "requeue", "capsule"]
    assert site.state(proposal_id)["state"] == "executing"
    (decision,) = only(ledger, "decision")
    assert decision["retries"] == 1
    lost, retry = only(ledger, "capsule")
    (requeue,) = only(ledger, "requeue")
    assert requeue["reason"] == "runner lost; retrying (attempt 2 of 2)"
    assert (requeue["attempt"], requeue["attempts"]) == (2, 2)
    assert requeue["runner_id"] == first.id
    assert (requeue["lease_id"], requeue["fencing_token"]) == (
        lost["lease_id"],
        lost["fencing_token"],
    )
    assert retry["fencing_token"] > lost["fencing_token"]
    assert retry["lease_id"] != lost["lease_id"]
    assert (lost["runner"]["id"], retry["runner"]["id"]) == (first.id, second.id)
    assert not (tmp_path / "note").exists()

    (tmp_path / "go").touch()  # release the second run
    final = site.final(proposal_id)
    assert final["state"] == "succeeded", final
    assert (tmp_path / "note").read_text() == "held and written"
    assert lines_of(started) == [str(first.process.pid), str(second.process.pid)]
    ledger = site.ledger(proposal_id)
    assert stages(ledger)[-6:] == [
        "capsule",
        "requeue",
        "capsule",
        "execution",
        "verification",
        "closure",
    ]
    assert len(only(ledger, "capsule")) == 2
    (execution,) = only(ledger, "execution")
    assert execution["ok"] is True and execution["kind"] == "hold-note"
    assert execution["runner"]["name"] == second.name
    assert (execution["lease_id"], execution["fencing_token"]) == (
        retry["lease_id"],
        retry["fencing_token"],
    )

    report = site.verify(proposal_id, tmp_path)
    assert report["final_state"] == "succeeded"
    assert report["stages"].count("capsule") == 2 and report["stages"].count("execution") == 1
    assert set(report["runner_keyids"]) == {first.keyid, second.keyid}
    assert "runner lost; requeued for attempt 2" in report["notes"]
    assert not any("cannot be checked offline" in note for note in report["notes"])


def test_an_idempotent_action_lost_twice_with_one_retry_fails_and_never_runs_a_third_time(
    fresh: Site, tmp_path: Path
) -> None:
    site = fresh
    started = tmp_path / "started"
    first = site.runner(tmp_path, tmp_path)
    proposal_id = site.propose("hold-note", hold())
    assert wait_lines(started, 1, [first]) == [str(first.process.pid)]
    first.kill()
    second = site.runner(tmp_path, tmp_path)
    assert wait_lines(started, 2, [second], timeout=LOST + 30)[1] == str(second.process.pid)

    second.kill()
    third = site.runner(tmp_path, tmp_path)  # polls while the second lease runs out
    final = site.final(proposal_id, timeout=LOST + 30)
    assert final["state"] == "failed", final
    assert final["reason"].startswith("runner lost: lease")
    # The third runner is up and leasing: a later action goes through it. The failed one
    # is never offered again, so hold-note started exactly twice.
    later = site.propose("write-note", {"name": "later", "text": "later"})
    assert site.final(later)["state"] == "succeeded"
    assert (tmp_path / "later").read_text() == "later"
    third.check_alive()
    assert lines_of(started) == [str(first.process.pid), str(second.process.pid)]
    assert not (tmp_path / "note").exists()

    ledger = site.ledger(proposal_id)
    assert stages(ledger).count("capsule") == 2
    assert stages(ledger).count("requeue") == 1
    assert "execution" not in stages(ledger)
    assert stages(ledger)[-1] == "closure"
    assert only(ledger, "closure")[0]["state"] == "failed"
    (later_execution,) = only(site.ledger(later), "execution")
    assert later_execution["runner"]["name"] == third.name
    report = site.verify(proposal_id, tmp_path)
    assert report["final_state"] == "failed"
    assert report["stages"].count("capsule") == 2 and report["stages"].count("requeue") == 1


def test_a_shell_action_whose_runner_is_killed_fails_and_never_runs_again_despite_retries(
    fresh: Site, tmp_path: Path
) -> None:
    site = fresh
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
        first = site.runner(tmp_path, tmp_path)
        argv = [sys.executable, "-c", code, str(marker), str(gate.path)]
        proposal_id = site.propose("shell", {"argv": argv})
        (line,) = wait_lines(marker, 1, [first])
        runner_pid, action_pid = (int(x) for x in line.split())
        assert runner_pid == first.process.pid
        assert site.state(proposal_id)["state"] == "executing"
        first.kill()  # its action lives on, orphaned
        assert alive(action_pid)
        second = site.runner(tmp_path, tmp_path)  # polls while the lost lease runs out

        final = site.final(proposal_id, timeout=LOST + 30)
        assert final["state"] == "failed", final
        assert final["reason"].startswith("runner lost: lease")
        later = site.propose("write-note", {"name": "later", "text": "later"})
        assert site.final(later)["state"] == "succeeded"
        second.check_alive()
        assert len(lines_of(marker)) == 1

        ledger = site.ledger(proposal_id)
        assert only(ledger, "decision")[0]["retries"] == 1  # retries granted, yet not used
        assert stages(ledger).count("capsule") == 1
        assert "requeue" not in stages(ledger) and "execution" not in stages(ledger)
        assert stages(ledger)[-1] == "closure"
        (later_execution,) = only(site.ledger(later), "execution")
        assert later_execution["runner"]["name"] == second.name
        report = site.verify(proposal_id, tmp_path)
        assert report["final_state"] == "failed" and report["stages"].count("capsule") == 1
    finally:
        gate.send("go")  # release the orphaned action
        if action_pid:
            assert wait_gone(action_pid, timeout=15)
        gate.close()
    assert len(lines_of(marker)) == 1
