"""`placet init`: data dir, migrated database, 0600 signing key; idempotent; relocatable."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.conftest import cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_is_idempotent_and_keeps_the_key(tmp_path: Path) -> None:
    data = tmp_path / "d"
    first = cli("init", "--data-dir", str(data), "--json")
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert created["created_key"] is True
    key = data / "keys" / "control-plane.key"
    assert mode(key) == 0o600
    assert (data / "placet.db").exists()
    again = json.loads(cli("init", "--data-dir", str(data), "--json").stdout)
    assert again["created_key"] is False and again["keyid"] == created["keyid"]


def test_default_data_dir_and_environment(tmp_path: Path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / ".placet" / "placet.db").exists()
    moved = tmp_path / "elsewhere"
    assert cli("init", env={"PLACET_DATA_DIR": str(moved)}, cwd=tmp_path).returncode == 0
    assert (moved / "placet.db").exists()


def test_database_url_points_elsewhere(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    result = cli(
        "init", "--data-dir", str(tmp_path / "d"), env={"PLACET_DATABASE_URL": f"sqlite:///{db}"}
    )
    assert result.returncode == 0, result.stderr
    assert db.exists() and not (tmp_path / "d" / "placet.db").exists()


def test_a_readable_key_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert cli("init", "--data-dir", str(data)).returncode == 0
    (data / "keys" / "control-plane.key").chmod(0o644)
    result = cli("principal", "list", "--data-dir", str(data))
    assert result.returncode == 2
    assert "must be 0600" in result.stderr
