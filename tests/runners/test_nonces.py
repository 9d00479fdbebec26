"""The runner's nonce store: a claimed nonce is refused again, also after a restart."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from placet.runners.nonces import KEEP_AFTER_EXPIRY, NONCE_FILE, NonceStore

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def claim(store: NonceStore, nonce: str, now: datetime = NOW) -> bool:
    return store.claim(
        nonce,
        proposal_id="P1",
        capsule_digest="d" * 64,
        now=now,
        expires_at=now + timedelta(minutes=5),
    )


def test_a_nonce_is_claimed_once(tmp_path: Path) -> None:
    store = NonceStore(tmp_path / "state")
    assert claim(store, "a" * 32) is True
    assert claim(store, "a" * 32) is False
    assert claim(store, "b" * 32) is True
    assert store.seen("a" * 32) and not store.seen("c" * 32)
    store.close()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_the_store_survives_a_restart_and_is_shared_by_processes_on_the_dir(
    tmp_path: Path,
) -> None:
    first = NonceStore(tmp_path)
    assert claim(first, "a" * 32)
    twin = NonceStore(tmp_path)  # a second runner process on the same dir
    assert claim(twin, "a" * 32) is False
    first.close()
    twin.close()
    again = NonceStore(tmp_path)
    assert (tmp_path / NONCE_FILE).is_file()
    assert again.seen("a" * 32)
    assert claim(again, "a" * 32) is False
    again.close()


def test_nonces_are_forgotten_only_long_after_their_capsule_expired(tmp_path: Path) -> None:
    store = NonceStore(tmp_path)
    assert claim(store, "a" * 32)
    assert claim(store, "b" * 32, NOW + KEEP_AFTER_EXPIRY) is True
    assert store.seen("a" * 32)  # expired 5 minutes ago less than KEEP_AFTER_EXPIRY
    assert claim(store, "c" * 32, NOW + KEEP_AFTER_EXPIRY + timedelta(minutes=6)) is True
    assert not store.seen("a" * 32)
    store.close()
