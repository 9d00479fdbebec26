"""Token rotation: `placet principal token` revokes the old token and issues a working one."""

from __future__ import annotations

import json

import httpx

from tests.conftest import Server, Tokens, cli


def test_a_rotated_token_replaces_the_old_one(server: Server, tokens: Tokens) -> None:
    result = cli("principal", "token", "bot", "--data-dir", str(server.data_dir), "--json")
    assert result.returncode == 0, result.stderr
    fresh = json.loads(result.stdout)
    assert fresh["name"] == "bot" and fresh["token"] != tokens.agent
    with httpx.Client(base_url=server.url) as c:
        old = c.get("/v1/proposals", headers={"Authorization": f"Bearer {tokens.agent}"})
        assert old.status_code == 401
        new = c.get("/v1/proposals", headers={"Authorization": f"Bearer {fresh['token']}"})
        assert new.status_code == 200


def test_tokens_are_stored_only_as_hashes(server: Server, tokens: Tokens) -> None:
    database = (server.data_dir / "placet.db").read_bytes()
    wal = server.data_dir / "placet.db-wal"
    stored = database + (wal.read_bytes() if wal.exists() else b"")
    for token in (tokens.agent, tokens.human, tokens.runner, tokens.owner):
        assert token.encode() not in stored
        assert token.removeprefix("plc_").encode() not in stored
