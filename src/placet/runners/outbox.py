"""The runner's outbox: a SQLite file in its state dir holding every report until delivered.

A signed execution or verification statement is written here (and committed) before it is
sent, with a per-lease ``sequence`` number. When the control plane is unreachable, or the
runner restarts, the report stays ``pending`` and is sent again later; the control plane
accepts each (lease, sequence) once, so a report resent after a lost answer is harmless.
Settled reports (delivered, or refused by the control plane) are kept for a while, so the
runner's host still holds what it signed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from placet.domain.errors import PlacetError
from placet.runners.state_db import open_state_db
from placet.runners.times import format_time

OUTBOX_FILE = "outbox.sqlite"
PENDING = "pending"
DELIVERED = "delivered"
REFUSED = "refused"
# Delivered reports are in the control plane's ledger: they are kept a day (their lease's
# sequence counter lives in them); refused ones, the runner's only copy, a week.
KEEP_DELIVERED = timedelta(days=1)
KEEP_REFUSED = timedelta(days=7)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    lease_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    stage TEXT NOT NULL,
    proposal_id TEXT NOT NULL,
    fencing_token INTEGER NOT NULL,
    envelope TEXT NOT NULL,
    status TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    settled_at TEXT,
    answer TEXT,
    PRIMARY KEY (lease_id, sequence)
);
CREATE INDEX IF NOT EXISTS reports_status_settled ON reports (status, settled_at);
"""


class OutboxError(PlacetError):
    """The outbox cannot be opened or written: a report could be lost, so say so loudly."""


@dataclass(frozen=True, slots=True)
class QueuedReport:
    """One report waiting in (or settled in) the outbox."""

    lease_id: str
    sequence: int
    stage: str
    proposal_id: str
    fencing_token: int
    envelope: Mapping[str, Any]
    status: str
    answer: str | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body of the report request."""
        return {
            "fencing_token": self.fencing_token,
            "sequence": self.sequence,
            "envelope": dict(self.envelope),
        }


def _row(row: tuple[Any, ...]) -> QueuedReport:
    lease_id, sequence, stage, proposal_id, fencing, envelope, status, answer = row
    return QueuedReport(
        lease_id, int(sequence), stage, proposal_id, int(fencing), json.loads(envelope), status,
        answer,
    )  # fmt: skip


_COLUMNS = "lease_id, sequence, stage, proposal_id, fencing_token, envelope, status, answer"


class Outbox:
    """Reports of this runner, persisted in ``DIR/outbox.sqlite`` (shared by twin processes)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / OUTBOX_FILE
        self._lock = threading.Lock()
        try:
            self._db = open_state_db(self.path, _SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"{self.path}: cannot open the outbox: {exc}") from None

    def add(
        self,
        lease_id: str,
        fencing_token: int,
        stage: str,
        envelope: Mapping[str, Any],
        *,
        proposal_id: str,
        now: datetime,
    ) -> QueuedReport:
        """Queue a report durably under the lease's next sequence number (1, 2, ...)."""
        (report,) = self.add_many(
            lease_id, fencing_token, [(stage, envelope)], proposal_id=proposal_id, now=now
        )
        return report

    def add_many(
        self,
        lease_id: str,
        fencing_token: int,
        reports: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        proposal_id: str,
        now: datetime,
    ) -> list[QueuedReport]:
        """Queue (stage, envelope) reports of one lease in one commit, numbered in order."""
        texts = [
            json.dumps(dict(envelope), separators=(",", ":"), sort_keys=True)
            for _, envelope in reports
        ]
        stages = ", ".join(stage for stage, _ in reports)
        with self._lock:
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    (last,) = self._db.execute(
                        "SELECT COALESCE(MAX(sequence), 0) FROM reports WHERE lease_id = ?",
                        (lease_id,),
                    ).fetchone()
                    first = int(last) + 1
                    self._db.executemany(
                        "INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                        [
                            (
                                lease_id, first + i, stage, proposal_id, fencing_token, text,
                                PENDING, format_time(now),
                            )
                            for i, ((stage, _), text) in enumerate(zip(reports, texts, strict=True))
                        ],
                    )  # fmt: skip
                    self._db.execute(
                        "DELETE FROM reports WHERE (status = ? AND settled_at < ?)"
                        " OR (status = ? AND settled_at < ?)",
                        (
                            DELIVERED, format_time(now - KEEP_DELIVERED),
                            REFUSED, format_time(now - KEEP_REFUSED),
                        ),
                    )  # fmt: skip
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: cannot queue the {stages} report: {exc}") from None
        return [
            QueuedReport(
                lease_id, first + i, stage, proposal_id, fencing_token, dict(envelope), PENDING
            )
            for i, (stage, envelope) in enumerate(reports)
        ]

    def pending(self, lease_id: str | None = None) -> list[QueuedReport]:
        """Reports not yet settled, oldest lease first and in sequence order within a lease."""
        query = f"SELECT {_COLUMNS} FROM reports WHERE status = ?"
        args: tuple[Any, ...] = (PENDING,)
        if lease_id is not None:
            query += " AND lease_id = ?"
            args = (PENDING, lease_id)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY queued_at, lease_id, sequence", args)
            return [_row(row) for row in rows.fetchall()]

    def all(self, lease_id: str) -> list[QueuedReport]:
        """Every report of ``lease_id`` still kept, in sequence order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM reports WHERE lease_id = ? ORDER BY sequence", (lease_id,)
            )
            return [_row(row) for row in rows.fetchall()]

    def settle(self, report: QueuedReport, status: str, answer: str, *, now: datetime) -> None:
        """Mark a report ``delivered`` (answer: the proposal's state) or ``refused`` (the
        control plane's reason); it is not sent again."""
        self.settle_many([(report, status, answer)], now=now)

    def settle_many(
        self, settled: Sequence[tuple[QueuedReport, str, str]], *, now: datetime
    ) -> None:
        """Settle several reports (report, status, answer) in one commit (see ``settle``)."""
        for _, status, _ in settled:
            if status not in (DELIVERED, REFUSED):
                raise ValueError(f"status must be {DELIVERED} or {REFUSED}, not {status!r}")
        if not settled:
            return
        with self._lock:
            try:
                with self._db:
                    self._db.executemany(
                        "UPDATE reports SET status = ?, answer = ?, settled_at = ?"
                        " WHERE lease_id = ? AND sequence = ?",
                        [
                            (status, answer, format_time(now), r.lease_id, r.sequence)
                            for r, status, answer in settled
                        ],
                    )
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: cannot settle a report: {exc}") from None

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
