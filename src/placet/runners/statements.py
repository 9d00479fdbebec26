"""The runner's own in-toto statements: what it executed and what verification observed.

Both are signed with the runner's key (``SigningKey.sign_statement``), never the control
plane's, so the ledger holds the runner's word for what ran: the action's digest, what ran
(argv, patch digest or HTTP request), when, its exit code or HTTP status, digests of its
output and redacted excerpts of the output's end, and the runner's identity and version.
Formats: notes/statements.md and docs/actions.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from placet import __version__
from placet.domain.canonical import digest_of, sha256_hex
from placet.runners.actions.base import ActionOutcome, from_shell
from placet.runners.actions.verify import CheckReport
from placet.runners.redact import DEFAULT, Redactor
from placet.runners.shell import ShellResult
from placet.runners.times import format_time

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
EXECUTION_PREDICATE = "https://placet.dev/execution/v1"
VERIFICATION_PREDICATE = "https://placet.dev/verification/v1"
EMPTY_SHA256 = sha256_hex(b"")


@dataclass(frozen=True, slots=True)
class Assignment:
    """The lease a runner works under; every statement it signs is bound to these values."""

    proposal_id: str
    proposal_digest: str
    runner: Mapping[str, str]
    lease_id: str
    fencing_token: int
    capsule_digest: str


def _statement(
    assignment: Assignment, predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"proposal/{assignment.proposal_id}",
                "digest": {"sha256": assignment.proposal_digest},
            }
        ],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def _lease_fields(assignment: Assignment) -> dict[str, Any]:
    return {
        "runner": dict(assignment.runner),
        "lease_id": assignment.lease_id,
        "fencing_token": assignment.fencing_token,
    }


def action_digest(parameters: Mapping[str, Any]) -> str:
    """SHA-256 of the RFC 8785 canonical JSON of an action's parameters."""
    return digest_of(dict(parameters))


def _outcome_fields(outcome: ActionOutcome, redactor: Redactor) -> dict[str, Any]:
    return {
        "argv": list(outcome.argv),
        "patch_sha256": outcome.patch_sha256,
        "exit_code": outcome.exit_code,
        "http_status": outcome.http_status,
        "timed_out": outcome.timed_out,
        "error": redactor.redact(outcome.error) if outcome.error else outcome.error,
        "stdout_sha256": outcome.stdout_sha256,
        "stderr_sha256": outcome.stderr_sha256,
        "stdout_bytes": outcome.stdout_bytes,
        "stderr_bytes": outcome.stderr_bytes,
        "stdout_excerpt": redactor.excerpt(outcome.stdout),
        "stderr_excerpt": redactor.excerpt(outcome.stderr),
        "started_at": format_time(outcome.started_at),
        "finished_at": format_time(outcome.finished_at),
    }


def execution_statement(
    assignment: Assignment,
    kind: str,
    result: ShellResult | ActionOutcome,
    *,
    parameters: Mapping[str, Any] | None = None,
    redactor: Redactor = DEFAULT,
) -> dict[str, Any]:
    """The execution statement for an action the runner took on (whatever its outcome).

    ``parameters`` are the action's parameters, bound by ``action_digest``; output excerpts
    (the last 4 KiB of each stream) pass through ``redactor`` before they are signed.
    """
    outcome = from_shell(result) if isinstance(result, ShellResult) else result
    return _statement(
        assignment,
        EXECUTION_PREDICATE,
        {
            **_lease_fields(assignment),
            "capsule_digest": assignment.capsule_digest,
            "proposal_digest": assignment.proposal_digest,
            "kind": kind,
            "action_digest": None if parameters is None else action_digest(parameters),
            **_outcome_fields(outcome, redactor),
            "ok": outcome.ok,
            "details": dict(outcome.details),
            "placet_version": __version__,
        },
    )


def unstarted_execution_statement(
    assignment: Assignment,
    *,
    kind: str,
    argv: Sequence[str],
    error: str,
    at: datetime,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An execution statement with ok=false for work the runner would not or could not start.

    Used for a refused capsule (then ``argv`` is empty: nothing ran) and for actions the
    runner rejects before starting them, so the proposal fails closed with a reason.
    """
    outcome = ActionOutcome(
        ok=False, started_at=at, finished_at=at, error=error, argv=tuple(argv), started=False
    )
    return execution_statement(assignment, kind, outcome, parameters=parameters)


def _attempt(outcome: ActionOutcome) -> dict[str, Any]:
    return {
        "started_at": format_time(outcome.started_at),
        "finished_at": format_time(outcome.finished_at),
        "exit_code": outcome.exit_code,
        "http_status": outcome.http_status,
        "ok": outcome.ok,
        "error": outcome.error,
    }


def verification_statement(
    assignment: Assignment, result: ShellResult | CheckReport, *, redactor: Redactor = DEFAULT
) -> dict[str, Any]:
    """The verification statement for a post-condition that was checked.

    ``passed`` is the last attempt's result; ``attempts`` counts every attempt, ``history``
    keeps the last few; ``started_at`` is the first attempt's start.
    """
    if isinstance(result, ShellResult):
        outcome = from_shell(result)
        report = CheckReport("argv", 1, outcome, (outcome,), 0.0, 0.0)
    else:
        report = result
    last = report.last
    first = report.history[0] if report.history else last
    fields = _outcome_fields(last, redactor)
    fields["started_at"] = format_time(first.started_at)
    fields["error"] = redactor.redact(last.error) if last.error else None
    http = dict(last.details) if report.check == "http" else None
    return _statement(
        assignment,
        VERIFICATION_PREDICATE,
        {
            **_lease_fields(assignment),
            "proposal_digest": assignment.proposal_digest,
            "check": report.check,
            "http": http,
            **fields,
            "argv": list(last.argv) if report.check == "argv" else None,
            "skipped": False,
            "passed": report.passed,
            "attempts": report.attempts,
            "retry_for": report.retry_for,
            "interval": report.interval,
            "history": [_attempt(item) for item in report.history],
            "placet_version": __version__,
        },
    )


def skipped_verification_statement(
    assignment: Assignment, *, execution_ok: bool, at: datetime
) -> dict[str, Any]:
    """The verification statement when the proposal has no verify spec: passed = execution ok."""
    stamp = format_time(at)
    return _statement(
        assignment,
        VERIFICATION_PREDICATE,
        {
            **_lease_fields(assignment),
            "proposal_digest": assignment.proposal_digest,
            "check": None,
            "http": None,
            "argv": None,
            "patch_sha256": None,
            "exit_code": None,
            "http_status": None,
            "timed_out": False,
            "skipped": True,
            "passed": execution_ok,
            "error": None,
            "stdout_sha256": EMPTY_SHA256,
            "stderr_sha256": EMPTY_SHA256,
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "stdout_excerpt": "",
            "stderr_excerpt": "",
            "started_at": stamp,
            "finished_at": stamp,
            "attempts": 0,
            "retry_for": 0.0,
            "interval": 0.0,
            "history": [],
            "placet_version": __version__,
        },
    )
