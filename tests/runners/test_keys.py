"""The runner key file: created 0600 as PKCS#8 PEM, reused, refused when others can read it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from placet.domain.signing import SigningKey
from placet.runners.keys import KeyFileError, load_key, load_or_create_key, load_public_key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_key_is_written_0600_as_pkcs8_pem(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "runner.pem"
    key = load_or_create_key(path)
    assert mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.from_pem(path.read_bytes()).keyid == key.keyid
    assert [p.name for p in path.parent.iterdir()] == ["runner.pem"]


def test_an_existing_key_is_reused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "runner.pem"
    first = load_or_create_key(path)
    content = path.read_bytes()
    assert load_or_create_key(path).keyid == first.keyid
    assert path.read_bytes() == content


@pytest.mark.parametrize("exposed", [0o644, 0o640, 0o604, 0o660])
def test_a_key_readable_by_others_is_refused(tmp_path: Path, exposed: int) -> None:
    path = tmp_path / "runner.pem"
    load_or_create_key(path)
    path.chmod(exposed)
    with pytest.raises(KeyFileError) as caught:
        load_or_create_key(path)
    message = str(caught.value)
    assert f"mode {exposed:04o}" in message
    assert f"chmod 600 {path}" in message


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runner.pem"
    path.write_text("hello")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_key(path)


def test_a_missing_key_file_is_a_clear_error_for_load_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key(tmp_path / "absent.pem")


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir.pem"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(folder)


def test_a_pinned_public_key_is_read_as_pem_or_base64(tmp_path: Path) -> None:
    key = SigningKey.generate()
    pem, b64 = tmp_path / "cp.pem", tmp_path / "cp.b64"
    pem.write_text(key.public.to_pem())
    b64.write_text(key.public.b64 + "\n")
    assert load_public_key(pem) == key.public
    assert load_public_key(b64) == key.public
    bad = tmp_path / "bad"
    bad.write_text("not a key")
    with pytest.raises(KeyFileError, match=str(bad)):
        load_public_key(bad)
