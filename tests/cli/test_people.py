"""`placet principal roles|show` and `placet group ...` on a local data dir, in subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(*args: str, words: str) -> None:
    result = cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert words in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback


def test_principal_roles_and_show(data_dir: Path) -> None:
    d = ("--data-dir", str(data_dir))
    added = json.loads(ok("principal", "add", "vera", "--kind", "human", "--json", *d))
    assert added["roles"] == ["viewer"] and added["token"].startswith("plc_")
    fails("principal", "add", "x", "--kind", "human", "--role", "boss", *d, words="'boss'")
    ok("principal", "add", "bot", "--kind", "agent", "--owner", "vera", *d)
    fails(
        "principal",
        "add",
        "bot2",
        "--kind",
        "agent",
        "--owner",
        "vera",
        "--role",
        "approver",
        *d,
        words="cannot hold roles",
    )
    changed = json.loads(ok("principal", "roles", "vera", "approver", "auditor", "--json", *d))
    assert changed["roles"] == ["approver", "auditor"]
    shown = json.loads(ok("principal", "show", "vera", "--json", *d))
    assert shown["roles"] == ["approver", "auditor"] and "token" not in shown
    assert "approver, auditor" in ok("principal", "show", "vera", *d)
    fails("principal", "roles", "bot", "viewer", *d, words="bot is an agent")
    fails("principal", "roles", "ghost", "viewer", *d, words="no principal 'ghost'")


def test_groups_and_members(data_dir: Path) -> None:
    d = ("--data-dir", str(data_dir))
    ok("principal", "add", "rita", "--kind", "human", "--team", "sre", *d)
    ok("group", "add", "eng", "--kind", "group", "--title", "Engineering", *d)
    ok("group", "add", "payments", "--parent", "eng", *d)
    fails("group", "add", "payments", *d, words="already exists")
    fails("group", "add", "x", "--kind", "tribe", *d, words="kind")
    fails("group", "add", "y", "--parent", "nope", *d, words="no group 'nope'")
    assert json.loads(ok("group", "member", "add", "payments", "rita", "--json", *d))[
        "members"
    ] == ["rita"]
    fails("group", "member", "add", "ghosts", "rita", *d, words="no group 'ghosts'")
    fails("group", "member", "add", "payments", "ghost", *d, words="no principal 'ghost'")
    listed = {g["name"]: g for g in json.loads(ok("group", "list", "--json", *d))}
    assert listed["sre"]["members"] == ["rita"] and listed["sre"]["kind"] == "team"
    assert listed["payments"]["parent"] == "eng" and listed["eng"]["title"] == "Engineering"
    assert "payments" in ok("group", "list", *d)
    assert "rita" in ok("group", "show", "payments", *d)
    ok("group", "member", "remove", "payments", "rita", *d)
    fails("group", "member", "remove", "payments", "rita", *d, words="no membership")
    removed = json.loads(ok("group", "remove", "sre", "--json", *d))
    assert removed == {"removed": "sre", "memberships_removed": ["rita"]}
    shown = json.loads(ok("principal", "show", "rita", "--json", *d))
    assert shown["teams"] == []
    fails("group", "show", "sre", *d, words="no group 'sre'")


def test_group_import_from_a_backstage_catalog(tmp_path: Path) -> None:
    d = ("--data-dir", str(tmp_path / "data"))
    ok("init", *d)
    fails("group", "import", *d, words="nothing imported yet")
    ok("graph", "import", str(DATA / "otel-demo-backstage"), "--source", "backstage", *d)
    ok("principal", "add", "guest", "--kind", "human", "--role", "approver", *d)
    report = json.loads(ok("group", "import", "--json", *d))
    assert report["memberships_added"] == 1 and report["unknown_users"] == []
    devs = json.loads(ok("group", "show", "devs", "--json", *d))
    assert devs["members"] == ["guest"] and devs["source"].startswith("graph:")
    again = ok("group", "import", *d)
    assert "devs" in again and "guest" in again and "memberships added 0" in again
