"""Post-conditions are retried within their window and every attempt is in the signed statement;
execution statements carry the action digest, output digests and redacted excerpts."""

from __future__ import annotations

import threading
from pathlib import Path

from placet import __version__
from placet.domain.canonical import digest_of, sha256_hex
from placet.domain.signing import SigningKey, open_envelope
from placet.runners.actions import ActionContext
from placet.runners.actions.http_kind import HttpAction
from placet.runners.actions.shell_kind import ShellAction
from placet.runners.actions.verify import run_check
from placet.runners.redact import REDACTED, redactor
from placet.runners.statements import Assignment, execution_statement, verification_statement

from .helpers import Fifo, python
from .localhttp import local_http

ASSIGNMENT = Assignment(
    "P1", "ab" * 32, {"id": "R1", "name": "r", "kind": "runner"}, "L1", 3, "cd" * 32
)
KEY = SigningKey.generate()


def ctx(tmp_path: Path, **options: object) -> ActionContext:
    return ActionContext(workdir=tmp_path.resolve(), **options)  # type: ignore[arg-type]


def test_an_http_check_is_retried_until_it_answers_2xx(tmp_path: Path) -> None:
    with local_http(fail_first=2) as local:
        spec = {"http": {"url": local.url + "/healthz"}, "retry_for": 30, "interval": 0.1}
        report = run_check(spec, ctx(tmp_path, allow_urls=(local.url,)))
        assert report.passed and report.attempts == 3
        assert [item.http_status for item in report.history] == [503, 503, 200]
        statement = verification_statement(ASSIGNMENT, report)
    predicate = statement["predicate"]
    assert (predicate["check"], predicate["passed"], predicate["attempts"]) == ("http", True, 3)
    assert predicate["http"] == {"method": "GET", "url": local.url + "/healthz"}
    assert predicate["http_status"] == 200 and predicate["argv"] is None
    assert [h["http_status"] for h in predicate["history"]] == [503, 503, 200]
    assert (predicate["retry_for"], predicate["interval"]) == (30.0, 0.1)
    assert "abc123secret" not in predicate["stdout_excerpt"]
    open_envelope(KEY.sign_statement(statement), [KEY.public])


def test_a_failing_check_stops_when_its_window_ends(tmp_path: Path) -> None:
    report = run_check(
        {"argv": python("import sys; sys.exit(3)"), "retry_for": 0.5, "interval": 0.1},
        ctx(tmp_path),
    )
    assert not report.passed and report.attempts >= 2
    predicate = verification_statement(ASSIGNMENT, report)["predicate"]
    assert predicate["passed"] is False and predicate["exit_code"] == 3
    assert predicate["attempts"] == report.attempts


def test_without_retry_for_there_is_exactly_one_attempt(tmp_path: Path) -> None:
    report = run_check({"argv": python("import sys; sys.exit(1)")}, ctx(tmp_path))
    assert (report.passed, report.attempts) == (False, 1)


def test_a_check_whose_url_is_not_allowed_is_not_retried(tmp_path: Path) -> None:
    with local_http() as local:
        report = run_check(
            {"http": {"url": local.url}, "retry_for": 30, "interval": 0.1}, ctx(tmp_path)
        )
        assert (report.passed, report.attempts) == (False, 1)
        assert "allow-list" in (report.last.error or "") and local.seen.requests == []


def test_a_lost_lease_ends_the_retries(tmp_path: Path) -> None:
    fifo = Fifo(tmp_path / "attempts")
    context = ctx(tmp_path)
    argv = python(
        "import sys; open(sys.argv[1], 'w').write('tried\\n'); sys.exit(1)", str(fifo.path)
    )
    outcome: list[int] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            run_check({"argv": argv, "retry_for": 600, "interval": 60}, context).attempts
        )
    )
    thread.start()
    assert fifo.wait_line() == "tried"
    context.cancel.set()
    thread.join(timeout=30)
    fifo.close()
    assert outcome == [1]


def test_the_execution_statement_binds_digests_and_redacts_excerpts(tmp_path: Path) -> None:
    parameters = {"argv": python("print('password=hunter2'); print('x' * 9000)")}
    outcome = ShellAction().run(parameters, ctx(tmp_path))
    statement = execution_statement(
        ASSIGNMENT, "shell", outcome, parameters=parameters, redactor=redactor(["x{100}"])
    )
    predicate = statement["predicate"]
    assert predicate["action_digest"] == digest_of(parameters)
    assert predicate["stdout_sha256"] == sha256_hex(outcome.stdout)
    assert predicate["stdout_bytes"] == len("password=hunter2\n") + 9001
    assert len(predicate["stdout_excerpt"].encode()) <= 4096
    assert "x" * 100 not in predicate["stdout_excerpt"] and REDACTED in predicate["stdout_excerpt"]
    assert predicate["placet_version"] == __version__
    assert predicate["patch_sha256"] is None and predicate["http_status"] is None
    short = execution_statement(
        ASSIGNMENT,
        "shell",
        ShellAction().run({"argv": python("print('password=hunter2')")}, ctx(tmp_path)),
        parameters={},
    )["predicate"]
    assert short["stdout_excerpt"] == f"password={REDACTED}\n"


def test_an_http_execution_records_its_status(tmp_path: Path) -> None:
    with local_http() as local:
        parameters = {"url": local.url + "/status/204"}
        outcome = HttpAction().run(parameters, ctx(tmp_path, allow_urls=(local.url,)))
    predicate = execution_statement(ASSIGNMENT, "http", outcome, parameters=parameters)["predicate"]
    assert (predicate["ok"], predicate["http_status"], predicate["exit_code"]) == (True, 204, None)
    assert predicate["details"] == {"method": "GET", "url": local.url + "/status/204"}
