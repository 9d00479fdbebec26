"""Every command refuses bad input with one line naming the problem and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placet.service.control_plane import ControlPlane
from tests.conftest import Tokens, cli


def one_line_error(result: object, code: int, words: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ") and words in lines[0], lines


def ledger_and_proposals(cp: ControlPlane) -> tuple[int, int]:
    return cp.ledger.size(), len(cp.proposals.list(None, limit=1000))


def test_commands_need_an_initialised_data_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for args in (["serve"], ["principal", "list"], ["status"]):
        one_line_error(cli(*args, "--data-dir", str(missing)), 2, "placet init")


def test_usage_errors_are_one_line(data_dir: Path) -> None:
    one_line_error(cli("principal", "add", "x", "--data-dir", str(data_dir)), 2, "--kind")
    one_line_error(cli("status", "--frobnicate"), 2, "--frobnicate")
    one_line_error(cli("deny", "ID", "--data-dir", str(data_dir)), 2, "--reason")
    one_line_error(cli("serve", "--port", "99999", "--data-dir", str(data_dir)), 2, "--port")


def test_principal_add_refuses_bad_input(data_dir: Path, plane: ControlPlane) -> None:
    d = ["--data-dir", str(data_dir)]
    one_line_error(cli("principal", "add", "x", "--kind", "robot", *d), 2, "kind")
    one_line_error(cli("principal", "add", "bot", "--kind", "agent", *d), 2, "needs an owner")
    one_line_error(
        cli("principal", "add", "bot", "--kind", "agent", "--owner", "ghost", *d),
        2,
        "not a registered human",
    )
    one_line_error(cli("principal", "add", "bad name!", "--kind", "human", *d), 2, "name")
    ok = cli("principal", "add", "alice", "--kind", "human", "--json", *d)
    assert ok.returncode == 0
    assert set(json.loads(ok.stdout)) >= {"id", "name", "token"}
    one_line_error(cli("principal", "add", "alice", "--kind", "human", *d), 2, "already exists")
    one_line_error(cli("principal", "token", "nobody", *d), 2, "no principal 'nobody'")
    assert [p.name for p in plane.principals.list()] == ["alice"]


def test_proposal_commands_refuse_bad_input(
    data_dir: Path, plane: ControlPlane, tokens: Tokens, tmp_path: Path
) -> None:
    d = ["--data-dir", str(data_dir)]
    base = ["--kind", "shell", "--target", "svc", "--env", "staging", "--intent", "x"]
    before = ledger_and_proposals(plane)
    one_line_error(cli("propose", *base, *d, "--", "true"), 2, "token is required")
    one_line_error(
        cli("propose", *base, *d, "--token", "plc_wrong", "--", "true"), 2, "matches no principal"
    )
    one_line_error(
        cli(
            "propose",
            "--kind",
            "teleport",
            "--target",
            "svc",
            "--env",
            "staging",
            "--intent",
            "x",
            "--token",
            tokens.agent,
            *d,
        ),
        2,
        "unknown action kind",
    )
    one_line_error(
        cli(
            "propose",
            "--kind",
            "shell",
            "--env",
            "staging",
            "--intent",
            "x",
            "--token",
            tokens.agent,
            *d,
            "--",
            "true",
        ),
        2,
        "targets: is required",
    )
    one_line_error(cli("propose", *base, "--token", tokens.agent, *d), 2, "parameters")
    one_line_error(
        cli("propose", *base, "--param", "novalue", "--token", tokens.agent, *d), 2, "KEY=VALUE"
    )
    not_json = tmp_path / "p.json"
    not_json.write_text("{nope")
    one_line_error(
        cli("propose", "--file", str(not_json), "--token", tokens.agent, *d), 2, "not valid JSON"
    )
    one_line_error(
        cli("propose", *base, "--token", tokens.human, *d, "--", "true"), 2, "only agents propose"
    )
    assert ledger_and_proposals(plane) == before

    made = cli(
        "propose", *base, "--env", "production", "--token", tokens.agent, "--json", *d, "--", "true"
    )
    assert made.returncode == 0, made.stderr
    proposal = json.loads(made.stdout)
    assert proposal["state"] == "pending_approval"
    before = ledger_and_proposals(plane)
    one_line_error(cli("approve", proposal["id"], "--token", tokens.agent, *d), 2, "never approves")
    one_line_error(
        cli("approve", proposal["id"], "--token", tokens.owner, *d),
        2,
        "the agent that proposed this",
    )
    one_line_error(cli("approve", "NOPE", "--token", tokens.human, *d), 2, "no proposal 'NOPE'")
    one_line_error(cli("status", "--state", "melted", *d), 2, "unknown state")
    one_line_error(
        cli("evidence", "export", "NOPE", "-o", str(tmp_path / "b.json"), *d),
        2,
        "no proposal 'NOPE'",
    )
    assert ledger_and_proposals(plane) == before
    denied = cli("deny", proposal["id"], "--reason", "not now", "--token", tokens.human, *d)
    assert denied.returncode == 0, denied.stderr
    one_line_error(
        cli("approve", proposal["id"], "--token", tokens.human, *d),
        2,
        "cannot approve a proposal in state denied",
    )


@pytest.mark.parametrize("content", ["{broken", "[]", '{"format": "something/v9"}'])
def test_verify_refuses_what_is_not_a_bundle(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(content)
    result = cli("verify", str(path))
    assert result.returncode in (1, 2)
    assert result.stderr.strip() and len(result.stderr.strip().splitlines()) == 1


def test_verify_missing_file_and_bad_key(tmp_path: Path) -> None:
    one_line_error(cli("verify", str(tmp_path / "none.json")), 2, "cannot read")
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "k.pub").write_text("not a key")
    one_line_error(
        cli("verify", str(tmp_path / "b.json"), "--key", str(tmp_path / "k.pub")), 2, "--key"
    )


def test_runner_refuses_bad_input(tmp_path: Path) -> None:
    one_line_error(
        cli(
            "runner",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--workdir",
            str(tmp_path / "missing"),
        ),
        2,
        "--workdir",
    )
    one_line_error(
        cli("runner", "--server", "http://127.0.0.1:9", "--token", "t", "--poll-interval", "0"),
        2,
        "--poll-interval",
    )
