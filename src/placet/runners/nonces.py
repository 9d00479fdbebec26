"""The runner's nonce store: a SQLite file in its state dir recording every capsule it took.

A nonce is claimed (written and committed) before the capsule's action starts, so a capsule
replayed later, after a crash or a restart, or to a second runner process sharing the dir,
is refused instead of run twice. Entries are kept well past their capsule's expiry.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

from placet.domain.errors import PlacetError
from placet.runners.state_db import open_state_db
from placet.runners.times import format_time

NONCE_FILE = "nonces.sqlite"
# Nonces are forgotten this long after their capsule expired (an expired capsule is refused
# anyway; the margin covers a runner clock set back by up to this much).
KEEP_AFTER_EXPIRY = timedelta(days=7)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    proposal_id TEXT NOT NULL,
    capsule_digest TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
)
"""


class NonceStoreError(PlacetError):
    """The nonce store cannot be opened or written: the runner must not run anything."""


class NonceStore:
    """Nonces of capsules this runner has taken, persisted in ``DIR/nonces.sqlite``."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / NONCE_FILE
        self._lock = threading.Lock()
        try:
            self._db = open_state_db(self.path, _SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise NonceStoreError(f"{self.path}: cannot open the nonce store: {exc}") from None

    def claim(
        self,
        nonce: str,
        *,
        proposal_id: str,
        capsule_digest: str,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Record ``nonce`` durably; False when it was already there (a replay)."""
        with self._lock:
            try:
                with self._db:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO nonces VALUES (?, ?, ?, ?, ?)",
                        (
                            nonce,
                            proposal_id,
                            capsule_digest,
                            format_time(now),
                            format_time(expires_at),
                        ),
                    )
                    self._db.execute(
                        "DELETE FROM nonces WHERE expires_at < ?",
                        (format_time(now - KEEP_AFTER_EXPIRY),),
                    )
            except sqlite3.Error as exc:
                raise NonceStoreError(f"{self.path}: cannot record nonce: {exc}") from None
            return cursor.rowcount == 1

    def seen(self, nonce: str) -> bool:
        """Whether ``nonce`` has been claimed."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM nonces WHERE nonce = ?", (nonce,)).fetchone()
        return row is not None

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
