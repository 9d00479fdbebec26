"""``placet policy test``: test rules are found, run, and reported pass, fail or error;
and what-if evaluation."""

from __future__ import annotations

import pytest

from placet.policy import PolicyBundle, PolicyError, default_bundle, sample_input
from placet.policy.testing import discover, eval_input, run_tests
from tests.policy.conftest import BundleWriter
from tests.policy.helpers import HEADER, decision_rule

POLICY = decision_rule(
    '{"outcome": "deny", "reasons": ["prod"]} if input.proposal.environment == "production"\n'
    'else := {"outcome": "allow", "reasons": ["ok"]}'
)
TESTS = (
    HEADER
    + "test_staging_is_allowed if {\n"
    + '\td := decision with input.proposal as {"environment": "staging"}\n'
    + '\td.outcome == "allow"\n}\n\n'
    + "test_wrong_on_purpose if {\n"
    + '\td := decision with input.proposal as {"environment": "production"}\n'
    + '\td.outcome == "allow"\n}\n\n'
    + "test_false := false\n\n"
    + "test_conflict := 1\n\ntest_conflict := 2\n\n"
    + '# test_in_a_comment if { true }\nnot_a_test := "test_in_a_string if {"\n'
)


def test_discover_finds_heads_not_comments_or_strings() -> None:
    package, names = discover(TESTS)
    assert package == "placet"
    assert names == [
        "test_staging_is_allowed",
        "test_wrong_on_purpose",
        "test_false",
        "test_conflict",
    ]


def test_run_tests_reports_pass_fail_and_error(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"policy.rego": POLICY, "policy_test.rego": TESTS})
    report = run_tests(directory)
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {
        "test_staging_is_allowed": "pass",
        "test_wrong_on_purpose": "fail",
        "test_false": "fail",
        "test_conflict": "error",
    }
    assert dict(report.counts) == {"pass": 1, "fail": 2, "error": 1}
    assert not report.ok
    errors = [r for r in report.results if r.outcome == "error"]
    assert "multiple outputs" in errors[0].message
    assert all(r.seconds >= 0 for r in report.results)
    assert report.results[0].query == "data.placet.test_staging_is_allowed"
    assert report.results[0].file == "policy_test.rego"


def test_a_directory_without_tests_is_not_ok(write_bundle: BundleWriter) -> None:
    report = run_tests(write_bundle({"policy.rego": POLICY}))
    assert report.results == ()
    assert not report.ok


def test_tests_in_another_package(write_bundle: BundleWriter) -> None:
    other = (
        "package placet.extra_test\n\nimport rego.v1\nimport data.placet\n\n"
        "test_allow if {\n"
        '\td := placet.decision with input.proposal as {"environment": "dev"}\n'
        '\td.outcome == "allow"\n}\n'
    )
    report = run_tests(write_bundle({"policy.rego": POLICY, "extra_test.rego": other}))
    assert [(r.package, r.outcome) for r in report.results] == [("placet.extra_test", "pass")]


def test_a_test_file_that_does_not_parse_is_named(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"policy.rego": POLICY, "bad_test.rego": HEADER + "test_x if {\n"})
    with pytest.raises(PolicyError, match=r"bad_test\.rego"):
        run_tests(directory)


def test_eval_input_gives_the_raw_answer_and_the_decision() -> None:
    document = sample_input(environment="production")
    document["assessment"]["blast_radius"]["tags"].append("business-hours")
    result = eval_input(default_bundle(), document)
    assert result["error"] is None
    assert result["raw"]["outcome"] == "require_approval"
    assert result["decision"]["approvals"]["min_approvals"] == 1
    assert result["decision"]["obligations"]["change_window"]["start"] == "08:00"
    assert result["digest"] == default_bundle().digest


def test_eval_input_reports_a_malformed_decision_as_the_error() -> None:
    bundle = PolicyBundle.from_files(
        {"p.rego": decision_rule('{"outcome": "allow", "reasons": ["x"], "approvals": 1}')},
        name="old",
    )
    result = eval_input(bundle, sample_input())
    assert result["decision"] is None
    assert result["raw"] == {"outcome": "allow", "reasons": ["x"], "approvals": 1}
    assert "approvals was replaced by min_approvals/from" in result["error"]


def test_with_the_whole_input_is_refused_before_it_can_crash_the_engine(
    write_bundle: BundleWriter,
) -> None:
    # rego-cpp aborts the process on this form when the rule calls a builtin.
    tests = HEADER + 'test_x if {\n\td := decision with input as {"proposal": {}}\n\td\n}\n'
    directory = write_bundle({"policy.rego": POLICY, "x_test.rego": tests})
    with pytest.raises(PolicyError, match=r"x_test\.rego:6: `with input as \.\.\.`"):
        run_tests(directory)
