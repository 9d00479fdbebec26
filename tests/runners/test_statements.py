"""Runner statements: well-formed per notes/statements.md and signed by the runner's key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from placet.domain.canonical import canonical_json, sha256_hex
from placet.domain.signing import IN_TOTO_PAYLOAD_TYPE, SignatureError, SigningKey, open_envelope
from placet.runners.shell import run
from placet.runners.statements import (
    EMPTY_SHA256,
    Assignment,
    execution_statement,
    skipped_verification_statement,
    unstarted_execution_statement,
    verification_statement,
)

from .helpers import python

RUNNER = SigningKey.generate()
ASSIGNMENT = Assignment(
    proposal_id="P1",
    proposal_digest="ab" * 32,
    runner={"id": "R1", "name": "runner-one", "kind": "runner"},
    lease_id="L1",
    fencing_token=3,
    capsule_digest="cd" * 32,
)
EXECUTION_FIELDS = {
    "runner",
    "lease_id",
    "fencing_token",
    "capsule_digest",
    "proposal_digest",
    "kind",
    "argv",
    "exit_code",
    "timed_out",
    "ok",
    "error",
    "stdout_sha256",
    "stderr_sha256",
    "stdout_bytes",
    "stderr_bytes",
    "started_at",
    "finished_at",
    "action_digest",
    "patch_sha256",
    "http_status",
    "stdout_excerpt",
    "stderr_excerpt",
    "details",
    "placet_version",
}
VERIFICATION_FIELDS = {
    "runner",
    "lease_id",
    "fencing_token",
    "proposal_digest",
    "argv",
    "exit_code",
    "timed_out",
    "skipped",
    "passed",
    "error",
    "started_at",
    "finished_at",
    "check",
    "http",
    "patch_sha256",
    "http_status",
    "stdout_sha256",
    "stderr_sha256",
    "stdout_bytes",
    "stderr_bytes",
    "stdout_excerpt",
    "stderr_excerpt",
    "attempts",
    "retry_for",
    "interval",
    "history",
    "placet_version",
}
AT = datetime(2026, 11, 25, 22, 40, 1, 123456, tzinfo=UTC)


def opened(statement: dict[str, Any]) -> dict[str, Any]:
    """Sign as the runner, then open the envelope with only the runner's public key."""
    envelope = RUNNER.sign_statement(statement)
    payload, payload_type, keyid = open_envelope(envelope, [RUNNER.public])
    assert payload_type == IN_TOTO_PAYLOAD_TYPE
    assert keyid == RUNNER.keyid
    assert payload == canonical_json(statement)
    result: dict[str, Any] = json.loads(payload)
    return result


def check_frame(statement: dict[str, Any], stage: str) -> None:
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "proposal/P1", "digest": {"sha256": "ab" * 32}}]
    assert statement["predicateType"] == f"https://placet.dev/{stage}/v1"
    predicate = statement["predicate"]
    assert predicate["runner"] == {"id": "R1", "name": "runner-one", "kind": "runner"}
    assert (predicate["lease_id"], predicate["fencing_token"]) == ("L1", 3)
    assert predicate["proposal_digest"] == "ab" * 32
    for stamp in (predicate["started_at"], predicate["finished_at"]):
        assert stamp.endswith("Z") and len(stamp) == len("2026-11-25T22:40:01.123Z")


def test_execution_statement_records_what_ran(tmp_path: Path) -> None:
    result = run(python("print('done')"), cwd=tmp_path)
    statement = opened(execution_statement(ASSIGNMENT, "shell", result))
    check_frame(statement, "execution")
    predicate = statement["predicate"]
    assert set(predicate) == EXECUTION_FIELDS
    assert predicate["capsule_digest"] == "cd" * 32
    assert predicate["kind"] == "shell"
    assert predicate["argv"] == list(result.argv)
    assert (predicate["exit_code"], predicate["ok"], predicate["error"]) == (0, True, None)
    assert predicate["timed_out"] is False
    assert predicate["stdout_sha256"] == sha256_hex(b"done\n")
    assert (predicate["stdout_bytes"], predicate["stderr_bytes"]) == (5, 0)
    assert predicate["stderr_sha256"] == EMPTY_SHA256


def test_a_failed_execution_says_ok_false(tmp_path: Path) -> None:
    result = run(python("import sys; sys.exit(2)"), cwd=tmp_path)
    predicate = opened(execution_statement(ASSIGNMENT, "shell", result))["predicate"]
    assert (predicate["exit_code"], predicate["ok"]) == (2, False)


def test_a_refused_capsule_is_an_execution_that_ran_nothing() -> None:
    statement = opened(
        unstarted_execution_statement(
            ASSIGNMENT, kind="shell", argv=[], error="capsule refused: expired", at=AT
        )
    )
    check_frame(statement, "execution")
    predicate = statement["predicate"]
    assert set(predicate) == EXECUTION_FIELDS
    assert predicate["argv"] == []
    assert (predicate["ok"], predicate["exit_code"]) == (False, None)
    assert predicate["error"] == "capsule refused: expired"
    assert predicate["started_at"] == predicate["finished_at"] == "2026-11-25T22:40:01.123Z"


@pytest.mark.parametrize(("code", "passed"), [(0, True), (1, False)])
def test_verification_statement_passes_only_on_exit_zero(
    tmp_path: Path, code: int, passed: bool
) -> None:
    result = run(python(f"import sys; sys.exit({code})"), cwd=tmp_path)
    statement = opened(verification_statement(ASSIGNMENT, result))
    check_frame(statement, "verification")
    predicate = statement["predicate"]
    assert set(predicate) == VERIFICATION_FIELDS
    assert (predicate["skipped"], predicate["passed"], predicate["exit_code"]) == (
        False,
        passed,
        code,
    )
    assert predicate["argv"] == list(result.argv)


@pytest.mark.parametrize("execution_ok", [True, False])
def test_skipped_verification_passes_as_the_execution_did(execution_ok: bool) -> None:
    statement = opened(skipped_verification_statement(ASSIGNMENT, execution_ok=execution_ok, at=AT))
    check_frame(statement, "verification")
    predicate = statement["predicate"]
    assert set(predicate) == VERIFICATION_FIELDS
    assert predicate["skipped"] is True
    assert predicate["passed"] is execution_ok
    assert predicate["argv"] is None and predicate["exit_code"] is None


def test_a_runner_statement_does_not_verify_under_another_key() -> None:
    envelope = RUNNER.sign_statement(
        skipped_verification_statement(ASSIGNMENT, execution_ok=True, at=AT)
    )
    with pytest.raises(SignatureError):
        open_envelope(envelope, [SigningKey.generate().public])
