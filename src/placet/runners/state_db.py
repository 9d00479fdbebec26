"""The runner's durable local files (nonce store, outbox): SQLite in its state dir, WAL,
``synchronous=FULL`` (a claimed nonce or a queued report survives a power cut)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_state_db(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating the 0700 state dir and the tables) a shared, thread-usable connection;
    OSError or sqlite3.Error when it cannot be opened (callers fail closed)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        db.commit()
    except sqlite3.Error:
        db.close()
        raise
    return db
