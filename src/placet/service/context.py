"""What every service shares: settings, database, signing key, policy, ledger, clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from placet.domain.signing import SigningKey
from placet.evidence.log import MerkleLog
from placet.policy.bundle import PolicyBundle
from placet.service.config import Settings
from placet.service.wakeups import WorkSignal
from placet.store.db import READ_ONLY

# Arbitrary constant naming the ledger sequencer's PostgreSQL advisory lock.
LEDGER_LOCK = 0x706C6163
# Key in ``Connection.info`` for the next leaf index inside one write transaction.
NEXT_LEAF = "placet.ledger.next_leaf"
# Key in ``Connection.info``: this write transaction made a proposal leasable.
WORK_ADDED = "placet.work_added"


@dataclass
class Context:
    """Shared, long-lived parts of a control plane process."""

    settings: Settings
    engine: Engine
    key: SigningKey
    policy: PolicyBundle
    log: MerkleLog
    clock: Callable[[], datetime]
    # SQLite has one writer; threads queue here and wake as soon as the lock is free,
    # rather than in SQLite's busy handler, which polls with sleeps of up to 100 ms.
    # Other processes are still serialised by BEGIN IMMEDIATE and busy_timeout.
    writer: threading.Lock = field(default_factory=threading.Lock)
    # Wakes lease requests waiting for work once a transaction that added some commits.
    work: WorkSignal = field(default_factory=WorkSignal)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that may append to the ledger (serialised across processes)."""
        if self.engine.dialect.name == "sqlite":
            with self.writer, self._begin() as conn:
                yield conn
                added = conn.info.pop(WORK_ADDED, False)
        else:
            with self._begin() as conn:
                yield conn
                added = conn.info.pop(WORK_ADDED, False)
        if added:  # committed: waiting lease requests look again now
            self.work.notify()

    @staticmethod
    def work_added(conn: Connection) -> None:
        """Mark the caller's write transaction as making a proposal leasable."""
        conn.info[WORK_ADDED] = True

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            # Pooled connections keep ``info`` between transactions: start the ledger's
            # per-transaction sequence afresh.
            conn.info.pop(NEXT_LEAF, None)
            conn.info.pop(WORK_ADDED, None)
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK})
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (on SQLite it never takes the writer lock)."""
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            yield conn
