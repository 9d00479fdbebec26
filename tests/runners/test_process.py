"""The runner loop against a real HTTP server on 127.0.0.1 (a stand-in control plane)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from placet.domain.canonical import digest_of
from placet.domain.errors import InputError
from placet.domain.proposal import parse_proposal
from placet.domain.signing import SigningKey
from placet.runners.capsule import capsule_digest, issue_capsule
from placet.runners.process import Runner, RunnerError
from placet.runners.times import utc_now

from .control_plane import RUNNER_REF, TOKEN, Job, RunningStub, StubControlPlane
from .helpers import python, shell_proposal, wait_gone


@pytest.fixture
def stub() -> Iterator[StubControlPlane]:
    plane = StubControlPlane()
    served = RunningStub(plane)
    try:
        yield plane
    finally:
        served.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_runner(stub: StubControlPlane, tmp_path: Path, **options: Any) -> Runner:
    settings: dict[str, Any] = {
        "workdir": tmp_path / "work",
        "poll_interval": 0.05,
        "retry_base": 0.01,
    }
    settings.update(options)
    return Runner(stub.url, TOKEN, tmp_path / "runner.pem", **settings)


@pytest.fixture
def runner(stub: StubControlPlane, tmp_path: Path, workdir: Path) -> Iterator[Runner]:
    with make_runner(stub, tmp_path) as made:
        yield made


def queue(stub: StubControlPlane, proposal: dict[str, Any], proposal_id: str = "P1") -> Job:
    job = Job(proposal_id, proposal, digest_of(proposal))
    stub.jobs.append(job)
    return job


def touch(path: Path) -> list[str]:
    return python("import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(path))


def test_register_pins_the_control_plane_key(stub: StubControlPlane, runner: Runner) -> None:
    registration = runner.register()
    assert registration.runner_id == "RUNNER1"
    assert registration.runner == RUNNER_REF
    assert registration.control_plane_keys == (stub.key.public,)
    assert stub.runner_key == runner.key.public
    assert stub.registered_kinds == ["shell"]


def test_no_work_means_run_once_returns_false(stub: StubControlPlane, runner: Runner) -> None:
    assert runner.run_once() is False
    assert stub.lease_requests == 1
    assert stub.reports == []


def test_a_successful_run_is_reported_then_verified(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    marker = workdir / "done"
    proposal = shell_proposal(
        python("import pathlib; pathlib.Path('done').write_text('x'); print('hello')"),
        verify={"argv": python("import os, sys; sys.exit(0 if os.path.exists('done') else 1)")},
    )
    queue(stub, proposal)
    assert runner.run_once() is True
    assert marker.read_text() == "x"
    execution, verification = stub.reports
    assert [execution.stage, verification.stage] == ["execution", "verification"]
    assert execution.signed_by == verification.signed_by == runner.key.keyid
    assert execution.fencing_token == 1
    statement = execution.statement
    assert statement["subject"] == [
        {"name": "proposal/P1", "digest": {"sha256": digest_of(proposal)}}
    ]
    predicate = statement["predicate"]
    assert predicate["ok"] is True and predicate["exit_code"] == 0
    assert predicate["argv"] == proposal["parameters"]["argv"]
    assert predicate["capsule_digest"] == capsule_digest(stub.leases["LEASE1"].capsule)
    assert predicate["stdout_bytes"] == len(b"hello\n")
    assert predicate["runner"] == RUNNER_REF
    check = verification.statement["predicate"]
    assert (check["skipped"], check["passed"], check["exit_code"]) == (False, True, 0)


def test_a_failing_command_is_reported_and_not_verified(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    verified = workdir / "verified"
    queue(stub, shell_proposal(python("import sys; sys.exit(3)"), verify={"argv": touch(verified)}))
    assert runner.run_once() is True
    [execution] = stub.reports
    assert execution.statement["predicate"]["ok"] is False
    assert execution.statement["predicate"]["exit_code"] == 3
    assert not verified.exists()


def test_without_a_verify_spec_verification_is_skipped_and_passes(
    stub: StubControlPlane, runner: Runner
) -> None:
    queue(stub, shell_proposal(["true"]))
    runner.run_once()
    check = stub.reports[1].statement["predicate"]
    assert (check["skipped"], check["passed"], check["argv"]) == (True, True, None)


def test_a_failing_verification_is_reported_as_not_passed(
    stub: StubControlPlane, runner: Runner
) -> None:
    queue(stub, shell_proposal(["true"], verify={"argv": ["false"]}))
    runner.run_once()
    check = stub.reports[1].statement["predicate"]
    assert (check["skipped"], check["passed"], check["exit_code"]) == (False, False, 1)


def test_heartbeats_are_sent_while_the_action_runs(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    beat = workdir / "beat"
    stub.on_heartbeat = beat.touch
    wait_for_beat = (
        "import os, sys, time\n"
        "end = time.monotonic() + 30\n"
        "while not os.path.exists('beat') and time.monotonic() < end: time.sleep(0.01)\n"
        "sys.exit(0 if os.path.exists('beat') else 1)\n"
    )
    queue(stub, shell_proposal(python(wait_for_beat)))
    runner.run_once()
    assert stub.heartbeats >= 1
    assert stub.reports[0].statement["predicate"]["ok"] is True


@pytest.mark.timeout(60)
def test_a_lost_lease_kills_the_action_and_nothing_is_reported(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    pidfile = workdir / "pid"
    stub.lose_lease = pidfile.exists
    code = (
        "import os, time\n"
        "open('pid.tmp', 'w').write(str(os.getpid())); os.replace('pid.tmp', 'pid')\n"
        "time.sleep(600)\n"
    )
    queue(stub, shell_proposal(python(code), timeout=600))
    assert runner.run_once() is True
    assert stub.leases["LEASE1"].lost
    assert wait_gone(int(pidfile.read_text()))
    assert stub.reports == []


def test_a_capsule_signed_by_an_unknown_key_fails_closed(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    ran = workdir / "ran"
    proposal = shell_proposal(touch(ran))
    impostor = SigningKey.generate()
    job = queue(stub, proposal)
    job.capsule = lambda lease_id, token: issue_capsule(
        impostor,
        proposal_id="P1",
        proposal=proposal,
        proposal_digest=digest_of(proposal),
        runner_id="RUNNER1",
        lease_id=lease_id,
        fencing_token=token,
        issued_at=utc_now(),
        ttl=timedelta(minutes=5),
    )
    assert runner.run_once() is True
    assert not ran.exists()
    [execution] = stub.reports
    predicate = execution.statement["predicate"]
    assert predicate["ok"] is False
    assert predicate["error"].startswith("capsule refused: signed by key")
    assert predicate["argv"] == [] and predicate["exit_code"] is None
    assert execution.statement["subject"][0]["name"] == "proposal/P1"


def test_an_expired_capsule_fails_closed(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    ran = workdir / "ran"
    proposal = shell_proposal(touch(ran))
    job = queue(stub, proposal)
    job.capsule = lambda lease_id, token: issue_capsule(
        stub.key,
        proposal_id="P1",
        proposal=proposal,
        proposal_digest=digest_of(proposal),
        runner_id="RUNNER1",
        lease_id=lease_id,
        fencing_token=token,
        issued_at=utc_now() - timedelta(hours=1),
        ttl=timedelta(minutes=5),
    )
    runner.run_once()
    assert not ran.exists()
    assert stub.reports[0].statement["predicate"]["error"].startswith("capsule refused: it expired")


def test_another_runners_capsule_is_neither_run_nor_reported(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    ran = workdir / "ran"
    proposal = shell_proposal(touch(ran))
    job = queue(stub, proposal)
    job.capsule = lambda lease_id, token: issue_capsule(
        stub.key,
        proposal_id="P1",
        proposal=proposal,
        proposal_digest=digest_of(proposal),
        runner_id="SOMEONE-ELSE",
        lease_id=lease_id,
        fencing_token=token,
        issued_at=utc_now(),
        ttl=timedelta(minutes=5),
    )
    assert runner.run_once() is True
    assert not ran.exists()
    assert stub.reports == []


def test_an_unreadable_capsule_is_not_reported(stub: StubControlPlane, runner: Runner) -> None:
    job = queue(stub, shell_proposal(["true"]))
    job.capsule = lambda lease_id, token: {"payload": "???", "payloadType": "x", "signatures": []}
    assert runner.run_once() is True
    assert stub.reports == []


def test_a_kind_the_runner_does_not_run_fails_closed(
    stub: StubControlPlane, runner: Runner
) -> None:
    body = {
        "kind": "restart",
        "targets": ["service:web"],
        "environment": "production",
        "intent": "restart it",
    }
    queue(stub, parse_proposal(body, "agent-7").as_dict())
    runner.run_once()
    [execution] = stub.reports
    predicate = execution.statement["predicate"]
    assert predicate["kind"] == "restart"
    assert predicate["error"] == "capsule refused: this runner does not run kind 'restart'"


def test_a_cwd_outside_the_workdir_is_not_run(stub: StubControlPlane, runner: Runner) -> None:
    queue(stub, shell_proposal(["true"], cwd="../.."))
    runner.run_once()
    [execution] = stub.reports
    predicate = execution.statement["predicate"]
    assert predicate["ok"] is False
    assert predicate["error"] == "cwd '../..' is outside the runner's working directory"


def test_a_cwd_inside_the_workdir_is_where_the_action_runs(
    stub: StubControlPlane, runner: Runner, workdir: Path
) -> None:
    (workdir / "sub").mkdir()
    queue(stub, shell_proposal(touch(Path("here")), cwd="sub"))
    runner.run_once()
    assert (workdir / "sub" / "here").exists()


def test_a_missing_cwd_fails_the_execution(stub: StubControlPlane, runner: Runner) -> None:
    queue(stub, shell_proposal(["true"], cwd="missing"))
    runner.run_once()
    assert "does not exist" in stub.reports[0].statement["predicate"]["error"]


def test_a_pinned_server_key_must_be_what_the_server_presents(
    stub: StubControlPlane, tmp_path: Path, workdir: Path
) -> None:
    stranger = SigningKey.generate().public
    with make_runner(stub, tmp_path, server_key=stranger) as runner:
        with pytest.raises(RunnerError, match="do not include the pinned key") as caught:
            runner.register()
        assert caught.value.fatal
    with make_runner(stub, tmp_path, server_key=stub.key.public) as runner:
        assert runner.register().control_plane_keys == (stub.key.public,)


def test_a_refused_token_is_fatal_and_surfaces_the_problem_detail(
    stub: StubControlPlane, tmp_path: Path, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = Runner(stub.url, "wrong-token", tmp_path / "k.pem", workdir=workdir)
    with runner, pytest.raises(RunnerError) as caught:
        runner.run_forever(threading.Event())
    assert caught.value.fatal
    assert "401" in str(caught.value)
    assert "the runner token is not valid" in str(caught.value)
    assert "wrong-token" not in str(caught.value) + caplog.text


def test_a_busy_server_is_retried(stub: StubControlPlane, runner: Runner) -> None:
    stub.unavailable["lease"] = 2
    stub.unavailable["execution"] = 1
    queue(stub, shell_proposal(["true"]))
    assert runner.run_once() is True
    assert stub.reports[0].statement["predicate"]["ok"] is True


def test_a_server_that_stays_busy_is_an_error_naming_its_detail(
    stub: StubControlPlane, tmp_path: Path, workdir: Path
) -> None:
    stub.unavailable["register"] = 5
    runner = make_runner(stub, tmp_path, retry_attempts=3)
    with runner, pytest.raises(RunnerError) as caught:
        runner.register()
    assert str(caught.value) == "register: the server said 503: try again"
    assert not caught.value.fatal
    assert stub.unavailable["register"] == 2


def test_an_unreachable_server_is_an_error_after_retries(tmp_path: Path, workdir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        Runner(
            f"http://127.0.0.1:{port}",
            TOKEN,
            tmp_path / "k.pem",
            workdir=workdir,
            retry_attempts=2,
            retry_base=0.01,
        ) as runner,
        pytest.raises(RunnerError, match="cannot reach") as caught,
    ):
        runner.register()
    assert not caught.value.fatal


def test_run_forever_works_until_stopped_and_never_logs_the_token(
    stub: StubControlPlane, runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    queue(stub, shell_proposal(["true"]), "P1")
    queue(stub, shell_proposal(["false"]), "P2")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,))
    thread.start()
    try:
        reports = stub.wait_for_reports(3)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [(r.lease_id, r.stage) for r in reports] == [
        ("LEASE1", "execution"),
        ("LEASE1", "verification"),
        ("LEASE2", "execution"),
    ]
    assert [r.statement["subject"][0]["name"] for r in reports] == [
        "proposal/P1",
        "proposal/P1",
        "proposal/P2",
    ]
    assert TOKEN not in caplog.text
    assert "LEASE1" in caplog.text


def test_the_runner_only_accepts_kinds_it_can_run(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(InputError, match="cannot run kind 'deploy'"):
        Runner(
            "http://127.0.0.1:1",
            TOKEN,
            tmp_path / "k.pem",
            kinds=("shell", "deploy"),
            workdir=workdir,
        )


def test_a_missing_workdir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an existing directory"):
        Runner("http://127.0.0.1:1", TOKEN, tmp_path / "k.pem", workdir=tmp_path / "nope")
