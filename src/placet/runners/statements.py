"""The runner's own in-toto statements: what it executed and what verification observed.

Both are signed with the runner's key (``SigningKey.sign_statement``), never the control
plane's, so the ledger holds the runner's word for what ran. Formats: notes/statements.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from placet.domain.canonical import sha256_hex
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


def execution_statement(assignment: Assignment, kind: str, result: ShellResult) -> dict[str, Any]:
    """The execution statement for a program that was started (whatever its outcome)."""
    return _statement(
        assignment,
        EXECUTION_PREDICATE,
        {
            **_lease_fields(assignment),
            "capsule_digest": assignment.capsule_digest,
            "proposal_digest": assignment.proposal_digest,
            "kind": kind,
            "argv": list(result.argv),
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "ok": result.ok,
            "error": result.error,
            "stdout_sha256": result.stdout_sha256,
            "stderr_sha256": result.stderr_sha256,
            "stdout_bytes": result.stdout_bytes,
            "stderr_bytes": result.stderr_bytes,
            "started_at": format_time(result.started_at),
            "finished_at": format_time(result.finished_at),
        },
    )


def unstarted_execution_statement(
    assignment: Assignment, *, kind: str, argv: Sequence[str], error: str, at: datetime
) -> dict[str, Any]:
    """An execution statement with ok=false for work the runner would not or could not start.

    Used for a refused capsule (then ``argv`` is empty: nothing ran) and for actions the
    runner rejects before starting them, so the proposal fails closed with a reason.
    """
    stamp = format_time(at)
    return _statement(
        assignment,
        EXECUTION_PREDICATE,
        {
            **_lease_fields(assignment),
            "capsule_digest": assignment.capsule_digest,
            "proposal_digest": assignment.proposal_digest,
            "kind": kind,
            "argv": list(argv),
            "exit_code": None,
            "timed_out": False,
            "ok": False,
            "error": error,
            "stdout_sha256": EMPTY_SHA256,
            "stderr_sha256": EMPTY_SHA256,
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "started_at": stamp,
            "finished_at": stamp,
        },
    )


def verification_statement(assignment: Assignment, result: ShellResult) -> dict[str, Any]:
    """The verification statement for a verify program that was run: passed iff it exited 0."""
    return _statement(
        assignment,
        VERIFICATION_PREDICATE,
        {
            **_lease_fields(assignment),
            "proposal_digest": assignment.proposal_digest,
            "argv": list(result.argv),
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "skipped": False,
            "passed": result.ok,
            "error": result.error,
            "started_at": format_time(result.started_at),
            "finished_at": format_time(result.finished_at),
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
            "argv": None,
            "exit_code": None,
            "timed_out": False,
            "skipped": True,
            "passed": execution_ok,
            "error": None,
            "started_at": stamp,
            "finished_at": stamp,
        },
    )
