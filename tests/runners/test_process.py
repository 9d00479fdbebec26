"""The runner loop (in-process ``Runner``) against a real ``placet serve`` subprocess.

Proposals are submitted by the agent over HTTP; the outcome is read back over HTTP and from
the ledger (``ControlPlane.ledger.export`` on the same data dir), and evidence bundles are
checked with the offline verifier. Servers are shared per module because starting one costs
seconds; each test works on its own proposals.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from placet.domain.errors import InputError
from placet.domain.signing import PublicKey, SigningKey, open_envelope
from placet.evidence.statements import envelope_payload, parse_statement
from placet.evidence.verify import VerificationReport, verify_bundle
from placet.runners.process import Runner
from placet.runners.protocol import RunnerError
from placet.runners.times import utc_now
from placet.service.clock import parse_rfc3339
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise
from placet.store.tables import leases
from tests.conftest import (
    SERVER_ENV,
    Server,
    Tokens,
    add_principals,
    seed_graph,
    start_server,
    stop_server,
)

from .helpers import Fifo, alive, python, wait_gone

TERMINAL = {"succeeded", "failed", "denied", "cancelled", "expired"}
SHORT_LEASE_SECONDS = 2


@dataclass
class Served:
    """A running server, a control plane open on its data dir, and HTTP clients for people."""

    server: Server
    plane: ControlPlane
    tokens: Tokens
    agent: httpx.Client
    human: httpx.Client

    @property
    def key(self) -> PublicKey:
        """The control plane's public key, as a runner would pin it."""
        return self.plane.ctx.key.public


def serve(directory: Path, env: dict[str, str]) -> Iterator[Served]:
    """Initialise ``directory``, add the principals, serve it; clean everything up after."""
    settings = load_settings(directory)
    initialise(settings)
    seed_graph(directory)
    plane = ControlPlane.open(settings)
    tokens = add_principals(plane)
    server = start_server(directory, env)
    agent = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.agent}"}, timeout=30
    )
    human = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {tokens.human}"}, timeout=30
    )
    try:
        yield Served(server, plane, tokens, agent, human)
    finally:
        agent.close()
        human.close()
        stop_server(server)
        plane.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server with leases long enough for a loaded machine."""
    yield from serve(tmp_path_factory.mktemp("served") / "data", SERVER_ENV)


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose leases last SHORT_LEASE_SECONDS (heartbeats every third of that)."""
    env = {**SERVER_ENV, "PLACET_LEASE_SECONDS": str(SHORT_LEASE_SECONDS)}
    yield from serve(tmp_path_factory.mktemp("short") / "data", env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_runner(served: Served, tmp_path: Path, **options: Any) -> Runner:
    """A runner with its own key file, polling quickly, working in ``tmp_path/work``."""
    settings: dict[str, Any] = {
        "workdir": tmp_path / "work",
        "poll_interval": 0.05,
        "retry_base": 0.01,
    }
    settings.update(options)
    token = settings.pop("token", served.tokens.runner)
    return Runner(served.server.url, token, tmp_path / "runner.pem", **settings)


@pytest.fixture
def runner(served: Served, tmp_path: Path, workdir: Path) -> Iterator[Runner]:
    with make_runner(served, tmp_path) as made:
        yield made


def shell(
    argv: list[str], verify: list[str] | None = None, environment: str = "staging", **params: Any
) -> dict[str, Any]:
    """A shell proposal body; staging is allowed by the default policy, production gated."""
    body: dict[str, Any] = {
        "kind": "shell",
        "targets": ["svc"],
        "parameters": {"argv": argv, **params},
        "environment": environment,
        "intent": "exercise the runner loop",
    }
    if verify is not None:
        body["verify"] = {"argv": verify}
    return body


def propose(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    """Submit ``body`` as the agent over HTTP; the proposal as the server shows it."""
    response = served.agent.post("/v1/proposals", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def state_of(served: Served, proposal_id: str) -> dict[str, Any]:
    response = served.human.get(f"/v1/proposals/{proposal_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_terminal(served: Served, proposal_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the proposal over HTTP (each round trip paces the next) until it is final."""
    deadline = utc_now() + timedelta(seconds=timeout)
    while True:
        body = state_of(served, proposal_id)
        if body["state"] in TERMINAL:
            return body
        assert utc_now() < deadline, f"proposal {proposal_id} is stuck in {body['state']}"


def ledger(served: Served, proposal_id: str) -> dict[str, dict[str, Any]]:
    """The proposal's recorded statements by stage, from its exported evidence bundle."""
    bundle = served.plane.ledger.export(proposal_id)
    out: dict[str, dict[str, Any]] = {}
    for item in bundle["entries"]:
        said = parse_statement(envelope_payload(item["envelope"]))
        out[said.stage.value] = {"statement": said, "envelope": item["envelope"]}
    return out


def verified(served: Served, proposal_id: str) -> VerificationReport:
    """The offline verifier's report on the proposal's bundle, pinned to the server's key."""
    return verify_bundle(served.plane.ledger.export(proposal_id), served.key)


def touch(path: Path) -> list[str]:
    return python("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(path))


def exists(path: Path) -> list[str]:
    return python("import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 1)", str(path))


# ---- registration and authentication ------------------------------------------------


def test_register_pins_the_control_plane_key_and_records_ours(
    served: Served, runner: Runner
) -> None:
    registration = runner.register()
    assert registration.runner["name"] == "runner-1"
    assert registration.runner["kind"] == "runner"
    assert registration.runner["owner"] == "olivia"
    assert registration.keyid == runner.key.keyid
    assert registration.control_plane_keys == (served.key,)
    keys = served.human.get("/v1/keys").json()["keys"]
    assert (runner.key.keyid, runner.key.public.b64, "runner") in [
        (k["keyid"], k["public_key"], k["role"]) for k in keys
    ]


def test_a_pinned_server_key_must_be_what_the_server_presents(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    stranger = SigningKey.generate().public
    with make_runner(served, tmp_path, server_key=stranger) as runner:
        with pytest.raises(RunnerError, match="do not include the pinned key") as caught:
            runner.run_forever(threading.Event())
        assert caught.value.fatal
        assert runner.registration is None
    with make_runner(served, tmp_path, server_key=served.key) as runner:
        assert runner.register().control_plane_keys == (served.key,)


def test_a_bad_token_is_fatal_and_surfaces_the_problem_detail(
    served: Served, tmp_path: Path, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        make_runner(served, tmp_path, token="wrong-token") as runner,
        pytest.raises(RunnerError) as caught,
    ):
        runner.run_forever(threading.Event())
    assert caught.value.fatal
    assert "401" in str(caught.value)
    assert "the token matches no principal" in str(caught.value)
    assert "wrong-token" not in str(caught.value) + caplog.text


def test_an_agents_token_is_fatal_for_a_runner(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    with (
        make_runner(served, tmp_path, token=served.tokens.agent) as runner,
        pytest.raises(RunnerError) as caught,
    ):
        runner.run_forever(threading.Event())
    assert caught.value.fatal
    assert "403" in str(caught.value) and "only runners" in str(caught.value)


# ---- leasing ------------------------------------------------------------------------


def test_no_work_means_run_once_returns_false(served: Served, runner: Runner) -> None:
    gated = propose(served, shell(["true"], environment="production"))
    assert gated["state"] == "pending_approval"
    assert runner.run_once() is False
    assert state_of(served, gated["id"])["state"] == "pending_approval"
    assert "capsule" not in ledger(served, gated["id"])


def test_a_kind_the_runner_does_not_run_is_never_leased_to_it(
    served: Served, runner: Runner
) -> None:
    restart = propose(
        served,
        {
            "kind": "restart",
            "targets": ["svc"],
            "environment": "staging",
            "intent": "restart it",
        },
    )
    assert restart["state"] == "authorized"
    assert runner.run_once() is False
    assert state_of(served, restart["id"])["state"] == "authorized"
    assert "capsule" not in ledger(served, restart["id"])


# ---- running ------------------------------------------------------------------------


def test_a_successful_run_is_verified_and_its_evidence_verifies(
    served: Served, runner: Runner, workdir: Path
) -> None:
    proposal = propose(
        served,
        shell(
            python("import pathlib; pathlib.Path('done').write_text('x'); print('hello')"),
            verify=exists(workdir / "done"),
        ),
    )
    assert proposal["state"] == "authorized"
    assert runner.run_once() is True
    assert (workdir / "done").read_text() == "x"
    assert state_of(served, proposal["id"])["state"] == "succeeded"

    report = verified(served, proposal["id"])
    assert report.final_state == "succeeded"
    assert report.stages == (
        "proposal",
        "assessment",
        "decision",
        "capsule",
        "execution",
        "verification",
        "closure",
    )
    assert report.runner_keyids == (runner.key.keyid,)
    record = ledger(served, proposal["id"])
    open_envelope(record["execution"]["envelope"], [runner.key.public])
    execution = record["execution"]["statement"].predicate
    assert (execution["ok"], execution["exit_code"], execution["error"]) == (True, 0, None)
    assert execution["stdout_bytes"] == len(b"hello\n")
    assert execution["argv"] == proposal["parameters"]["argv"]
    assert execution["runner"]["name"] == "runner-1"
    capsule = record["capsule"]["statement"].predicate
    assert execution["capsule_digest"] == capsule["capsule_digest"]
    assert execution["lease_id"] == capsule["lease_id"]
    check = record["verification"]["statement"].predicate
    assert (check["skipped"], check["passed"], check["exit_code"]) == (False, True, 0)


def test_without_a_verify_spec_verification_is_skipped_and_passes(
    served: Served, runner: Runner
) -> None:
    proposal = propose(served, shell(["true"]))
    assert runner.run_once() is True
    assert state_of(served, proposal["id"])["state"] == "succeeded"
    check = ledger(served, proposal["id"])["verification"]["statement"].predicate
    assert (check["skipped"], check["passed"], check["argv"]) == (True, True, None)


def test_a_failing_command_fails_the_proposal_and_is_not_verified(
    served: Served, runner: Runner, workdir: Path
) -> None:
    proposal = propose(
        served, shell(python("import sys; sys.exit(3)"), verify=touch(workdir / "verified"))
    )
    assert runner.run_once() is True
    assert state_of(served, proposal["id"])["state"] == "failed"
    assert not (workdir / "verified").exists()
    record = ledger(served, proposal["id"])
    assert "verification" not in record
    execution = record["execution"]["statement"].predicate
    assert (execution["ok"], execution["exit_code"]) == (False, 3)
    report = verified(served, proposal["id"])
    assert report.final_state == "failed"
    assert report.stages[-2:] == ("execution", "closure")


def test_a_failing_verify_command_fails_the_proposal(served: Served, runner: Runner) -> None:
    proposal = propose(served, shell(["true"], verify=python("import sys; sys.exit(1)")))
    assert runner.run_once() is True
    assert state_of(served, proposal["id"])["state"] == "failed"
    record = ledger(served, proposal["id"])
    assert record["execution"]["statement"].predicate["ok"] is True
    check = record["verification"]["statement"].predicate
    assert (check["skipped"], check["passed"], check["exit_code"]) == (False, False, 1)
    assert verified(served, proposal["id"]).final_state == "failed"


def test_a_cwd_outside_the_workdir_is_not_run(
    served: Served, runner: Runner, tmp_path: Path
) -> None:
    proposal = propose(served, shell(touch(Path("escaped")), cwd=".."))
    assert runner.run_once() is True
    final = state_of(served, proposal["id"])
    assert final["state"] == "failed"
    assert "cwd '..' is outside the runner's working directory" in final["reason"]
    assert not (tmp_path / "escaped").exists()


def test_a_cwd_inside_the_workdir_is_where_the_action_runs(
    served: Served, runner: Runner, workdir: Path
) -> None:
    (workdir / "sub").mkdir()
    proposal = propose(served, shell(touch(Path("here")), cwd="sub"))
    assert runner.run_once() is True
    assert state_of(served, proposal["id"])["state"] == "succeeded"
    assert (workdir / "sub" / "here").exists()


def test_a_capsule_expired_by_the_runners_clock_fails_closed(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    proposal = propose(served, shell(touch(workdir / "ran")))
    late = make_runner(served, tmp_path, clock=lambda: utc_now() + timedelta(hours=1))
    with late:
        assert late.run_once() is True
    assert not (workdir / "ran").exists()
    final = state_of(served, proposal["id"])
    assert final["state"] == "failed"
    assert "capsule refused: it expired" in final["reason"]
    execution = ledger(served, proposal["id"])["execution"]["statement"].predicate
    assert (execution["ok"], execution["argv"], execution["exit_code"]) == (False, [], None)
    assert verified(served, proposal["id"]).final_state == "failed"


def test_run_forever_works_until_stopped_and_never_logs_the_token(
    served: Served, runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = propose(served, shell(["true"]))
    bad = propose(served, shell(["false"]))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,))
    thread.start()
    try:
        states = [wait_terminal(served, p["id"])["state"] for p in (good, bad)]
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert states == ["succeeded", "failed"]
    assert served.tokens.runner not in caplog.text
    lease_id = ledger(served, good["id"])["capsule"]["statement"].predicate["lease_id"]
    assert lease_id in caplog.text


# ---- leases -------------------------------------------------------------------------


def start_run_once(runner: Runner) -> tuple[threading.Thread, list[bool]]:
    """``runner.run_once()`` in a thread; its result lands in the returned list."""
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(runner.run_once()))
    thread.start()
    return thread, result


WAIT_FOR_GO = (
    "import os, pathlib\n"
    "pathlib.Path('pid.tmp').write_text(str(os.getpid())); os.replace('pid.tmp', 'pid')\n"
    "with open('ready', 'w') as ready: ready.write('started\\n')\n"
    "with open('go', 'rb') as go: go.read(1)\n"
)


def test_heartbeats_keep_a_lease_alive_past_its_first_expiry(
    short: Served, tmp_path: Path, workdir: Path
) -> None:
    ready, go = Fifo(workdir / "ready"), Fifo(workdir / "go")
    proposal = propose(short, shell(python(WAIT_FOR_GO)))
    with make_runner(short, tmp_path) as runner:
        thread, result = start_run_once(runner)
        try:
            assert ready.wait_line() == "started"
            query = select(leases).where(leases.c.proposal_id == proposal["id"])
            with short.plane.ctx.read() as conn:
                first_expiry = parse_rfc3339(conn.execute(query).one().expires_at)
            # Until well past the lease's first expiry (the reaper runs every 0.2 s), the
            # lease stays active and keeps moving ahead of the clock.
            while utc_now() < first_expiry + timedelta(seconds=0.6):
                assert state_of(short, proposal["id"])["state"] == "executing"
            with short.plane.ctx.read() as conn:
                lease = conn.execute(query).one()
            assert lease.status == "active"
            assert parse_rfc3339(lease.expires_at) > first_expiry
        finally:
            go.send("go")
            thread.join(timeout=30)
            ready.close()
            go.close()
    assert result == [True]
    assert state_of(short, proposal["id"])["state"] == "succeeded"


def test_a_lost_lease_kills_the_action_and_nothing_is_reported(
    short: Served, tmp_path: Path, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="placet.runner")
    ready, go = Fifo(workdir / "ready"), Fifo(workdir / "go")
    proposal = propose(short, shell(python(WAIT_FOR_GO), timeout=300))
    server = short.server.process
    # The default 30 s request timeout stays: a heartbeat never waits past the lease's
    # expiry, so the action must be gone well before a request could time out.
    with make_runner(short, tmp_path) as runner:
        thread, result = start_run_once(runner)
        try:
            assert ready.wait_line() == "started"
            pid = int((workdir / "pid").read_text())
            assert alive(pid)
            os.kill(server.pid, signal.SIGSTOP)
            try:
                # The server can do nothing now: only the runner can end the action, once
                # its heartbeats have failed for longer than the lease.
                assert wait_gone(pid, timeout=15), "the runner did not kill the action"
                thread.join(timeout=30)
                assert not thread.is_alive(), "the runner is still busy with a lost lease"
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            go.send("go")
            thread.join(timeout=30)
            ready.close()
            go.close()
    assert result == [True]
    assert "was lost: the action was stopped and is not reported" in caplog.text
    assert "report execution" not in caplog.text
    final = wait_terminal(short, proposal["id"])
    assert final["state"] == "failed"
    assert "runner lost" in final["reason"]
    record = ledger(short, proposal["id"])
    assert "execution" not in record and "verification" not in record
    report = verified(short, proposal["id"])
    assert report.stages == ("proposal", "assessment", "decision", "capsule", "closure")
    assert report.final_state == "failed"


# ---- an unresponsive server -----------------------------------------------------------


class _Retries(logging.Handler):
    """Sets ``seen`` when the runner logs that it will retry a request."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.seen.set()


def test_a_hung_server_is_retried_until_it_answers(
    served: Served, tmp_path: Path, workdir: Path
) -> None:
    watch = _Retries()
    logger = logging.getLogger("placet.runner")
    logger.addHandler(watch)
    server = served.server.process
    answers: list[Any] = []
    runner = make_runner(served, tmp_path, http_timeout=0.5, retry_attempts=60, retry_cap=0.2)
    thread = threading.Thread(target=lambda: answers.append(runner.register()))
    try:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            thread.start()
            assert watch.seen.wait(30), "the runner did not retry a request the server left hanging"
            assert not answers
        finally:
            os.kill(server.pid, signal.SIGCONT)
        thread.join(timeout=60)
    finally:
        logger.removeHandler(watch)
        runner.close()
    assert not thread.is_alive()
    assert [a.control_plane_keys for a in answers] == [(served.key,)]


def test_an_unreachable_server_is_a_transient_error_after_retries(
    tmp_path: Path, workdir: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # Bound but not listening: every connection is refused.
        with (
            Runner(
                f"http://127.0.0.1:{port}",
                "token",
                tmp_path / "k.pem",
                workdir=workdir,
                retry_attempts=2,
                retry_base=0.01,
            ) as runner,
            pytest.raises(RunnerError, match="cannot reach") as caught,
        ):
            runner.register()
    assert not caught.value.fatal


def test_the_runner_only_accepts_kinds_it_can_run(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(InputError, match="cannot run kind 'deploy'"):
        Runner(
            "http://127.0.0.1:1",
            "token",
            tmp_path / "k.pem",
            kinds=("shell", "deploy"),
            workdir=workdir,
        )


def test_a_missing_workdir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an existing directory"):
        Runner("http://127.0.0.1:1", "token", tmp_path / "k.pem", workdir=tmp_path / "nope")
