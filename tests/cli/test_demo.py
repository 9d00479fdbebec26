"""`placet demo --once` in a temporary directory: three proposals settle and verify."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli, free_port


def test_demo_once(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = cli(
        "demo",
        "--once",
        "--data-dir",
        str(data),
        "--port",
        str(free_port()),
        env={"COLUMNS": "200"},
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "placet approve" in result.stdout
    for state in ("succeeded", "denied"):
        assert state in result.stdout
    bundles = sorted((data / "bundles").glob("*.json"))
    assert len(bundles) == 3
    states = []
    for path in bundles:
        verified = cli(
            "verify", str(path), "--json", "--key", str(data / "keys" / "control-plane.pub")
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        states.append(json.loads(verified.stdout)["final_state"])
    assert sorted(states) == ["denied", "succeeded", "succeeded"]
    assert result.stdout.count("verified") == 3


def test_demo_refuses_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = cli("demo", "--once", "--data-dir", str(tmp_path / "d"), "--port", str(port))
    assert result.returncode == 1
    assert "in use" in result.stderr
