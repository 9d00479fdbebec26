"""``placet policy ...`` and ``placet report permissions`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from placet.policy.input import sample_input
from tests.conftest import Server, Tokens, cli

LIBRARY = Path(__file__).resolve().parents[2] / "src" / "placet" / "policy" / "policies" / "default"
DENY_ALL = """package placet
import rego.v1
decision := {"outcome": "deny", "reasons": ["frozen for the audit"]}
"""
WITH_TESTS = """package placet
import rego.v1
decision := {"outcome": "allow", "reasons": ["fine"]} if input.proposal.kind == "shell"
"""
PASSING = """package placet
import rego.v1
test_shell_is_allowed if {
  decision.outcome == "allow" with input.proposal as {"kind": "shell"}
}
"""
FAILING = """package placet
import rego.v1
test_restart_is_allowed if {
  decision.outcome == "allow" with input.proposal as {"kind": "restart"}
}
"""


def bundle_dir(root: Path, name: str, files: dict[str, str]) -> Path:
    directory = root / name
    directory.mkdir()
    for path, text in files.items():
        (directory / path).write_text(text)
    return directory


def test_policy_test_prints_a_table_and_fails_on_a_failing_test(tmp_path: Path) -> None:
    shipped = cli("policy", "test", str(LIBRARY))
    assert shipped.returncode == 0, shipped.stderr
    assert "pass" in shipped.stdout and "— ok" in shipped.stdout
    mixed = bundle_dir(
        tmp_path, "mixed", {"p.rego": WITH_TESTS, "a_test.rego": PASSING, "b_test.rego": FAILING}
    )
    result = cli("policy", "test", str(mixed), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    outcomes = {r["test"]: r["outcome"] for r in report["results"]}
    assert outcomes == {"test_shell_is_allowed": "pass", "test_restart_is_allowed": "fail"}
    assert report["ok"] is False
    empty = cli("policy", "test", str(tmp_path / "nowhere"))
    assert empty.returncode == 2
    assert empty.stderr.startswith("error: DIR:") and empty.stderr.count("\n") == 1


def test_eval_answers_what_if_from_a_file_or_a_directory(data_dir: Path, tmp_path: Path) -> None:
    document = tmp_path / "input.json"
    document.write_text(json.dumps(sample_input(environment="production")))
    d = ("--data-dir", str(data_dir))
    stored = cli("policy", "eval", "--input", str(document), *d, "--json")
    assert stored.returncode == 0, stored.stderr
    answer = json.loads(stored.stdout)
    assert answer["outcome"] == "require_approval"
    assert answer["decision"]["approvals"]["min_approvals"] == 1
    frozen = bundle_dir(tmp_path, "frozen", {"p.rego": DENY_ALL})
    what_if = cli("policy", "eval", "--input", str(document), "--dir", str(frozen))
    assert what_if.returncode == 0, what_if.stderr
    assert "outcome  deny" in what_if.stdout and "frozen for the audit" in what_if.stdout
    (tmp_path / "bad.json").write_text("{not json")
    bad = cli("policy", "eval", "--input", str(tmp_path / "bad.json"), *d)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --input:")


def test_push_show_history_shadow_and_rollback_locally(data_dir: Path, tmp_path: Path) -> None:
    d = ("--data-dir", str(data_dir))
    frozen = bundle_dir(tmp_path, "frozen", {"p.rego": DENY_ALL})
    pushed = cli("policy", "push", str(frozen), *d, "--json")
    assert pushed.returncode == 0, pushed.stderr
    record = json.loads(pushed.stdout)
    assert record["mode"] == "enforce" and record["name"] == "frozen"
    shown = cli("policy", "show", *d)
    assert "frozen" in shown.stdout and record["digest"][:16] in shown.stdout
    shadow = cli("policy", "push", str(LIBRARY), "--shadow", "--name", "next", *d)
    assert "now shadowing" in shadow.stdout
    history = json.loads(cli("policy", "history", *d, "--json").stdout)
    assert [(h["mode"], h["action"]) for h in history] == [("shadow", "push"), ("enforce", "push")]
    assert history[0]["author"].startswith("local:")
    report = cli("policy", "shadow", *d)
    assert report.returncode == 0, report.stderr
    assert "0 proposals evaluated" in report.stdout
    back = cli("policy", "rollback", *d)
    assert back.returncode == 0 and "default" in back.stdout
    again = cli("policy", "rollback", *d)
    assert again.returncode == 2 and "packaged default" in again.stderr
    broken = bundle_dir(tmp_path, "broken", {"p.rego": "package placet\ndecision := {"})
    refused = cli("policy", "push", str(broken), *d)
    assert refused.returncode == 2 and refused.stderr.startswith("error: bundle:")


def test_report_permissions_over_http(server: Server, tokens: Tokens) -> None:
    s = ("--server", server.url)
    made = cli(
        "propose",
        "--kind",
        "restart",
        "--target",
        "payments",
        "--env",
        "production",
        "--intent",
        "report me",
        *s,
        "--token",
        tokens.agent,
        "--json",
    )
    assert made.returncode == 0, made.stderr
    table = cli("report", "permissions", *s, "--token", tokens.auditor)
    assert table.returncode == 0, table.stderr
    assert "bot" in table.stdout and "1 need a human" in table.stdout
    refused = cli("report", "permissions", *s, "--token", tokens.viewer)
    assert refused.returncode == 2 and "auditor" in refused.stderr


def test_a_test_that_never_ends_is_stopped_and_named(tmp_path: Path) -> None:
    looping = bundle_dir(
        tmp_path,
        "looping",
        {
            "p.rego": WITH_TESTS,
            "loop_test.rego": """package placet
import rego.v1
test_forever if {
  count([x | some x in numbers.range(1, 100000000)]) > 0
}
""",
        },
    )
    result = cli("policy", "test", str(looping), "--timeout", "2")
    assert result.returncode == 1
    assert "did not finish within 2 s" in result.stderr
    assert "loop_test.rego: test_forever" in result.stderr
