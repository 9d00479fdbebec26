"""The shipped policy library: its Rego tests all pass, every rule has tests, and its
decisions through placet (the contract, the reasons, the strictest requirement)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from placet.domain.authority import ChangeWindow, Outcome
from placet.policy import PolicyBundle, PolicyError, default_bundle, sample_input
from placet.policy.bundle import default_bundle_files
from placet.policy.testing import discover, run_tests
from tests.policy.helpers import assessed, library_files

LIBRARY = Path(str(default_bundle_files()))
# Each rule of the library, the file that holds it and the prefix its tests' names share.
RULES = {
    "combine": ("placet.rego", "test_combine_"),
    "destructive kinds are denied to agents": ("destructive.rego", "test_destructive_"),
    "production needs approval": ("production.rego", "test_production_needs"),
    "change windows": ("production.rego", "test_production_change"),
    "revenue path needs owners": ("revenue.rego", "test_revenue_"),
    "regulated data needs owners": ("revenue.rego", "test_regulated_"),
    "blast-radius thresholds": ("blast_radius.rego", "test_blast_radius_"),
    "unknown targets need a human": ("unknown_targets.rego", "test_unknown_targets_"),
}
DESTRUCTIVE = ("delete_resource", "drop_database", "destroy_environment", "purge_data")


def test_every_library_test_passes() -> None:
    report = run_tests(LIBRARY)
    failed = [(r.name, r.outcome, r.message) for r in report.results if r.outcome != "pass"]
    assert failed == []
    assert report.ok
    assert report.counts["pass"] == len(report.results) >= len(RULES)


def test_every_rule_has_at_least_one_test() -> None:
    names = [name for r in run_tests(LIBRARY).results for name in [r.name]]
    files = set(library_files())
    for rule, (source, prefix) in RULES.items():
        assert source in files, rule
        assert any(n.startswith(prefix) for n in names), f"{rule} has no test named {prefix}*"
    # Every policy file has a test file beside it.
    for source in files:
        test_file = LIBRARY / source.replace(".rego", "_test.rego")
        assert test_file.is_file(), source
        assert discover(test_file.read_text())[1], test_file


def test_the_tests_are_not_part_of_the_enforcing_bundle() -> None:
    assert all(not name.endswith("_test.rego") for name in default_bundle().files)
    assert len(default_bundle().files) == len(library_files()) >= 6


def test_constants_sit_at_the_top_of_each_file_as_data() -> None:
    text = {p.name: p.read_text() for p in LIBRARY.glob("*.rego")}
    assert "large_blast_radius := 25\n" in text["blast_radius.rego"]
    assert "huge_blast_radius := 200\n" in text["blast_radius.rego"]
    assert "owner_min_approvals := 2\n" in text["revenue.rego"]
    assert re.search(r'"start": "08:00",\n\t"end": "18:00"', text["production.rego"])


def test_allow_in_staging() -> None:
    decision = default_bundle().evaluate(sample_input())
    assert decision.outcome is Outcome.ALLOW
    assert decision.reasons == ("no rule requires approval in staging",)
    assert decision.requirement.count == 0
    assert decision.obligations.change_window is None


def test_production_needs_one_approval_and_carries_the_change_window() -> None:
    untagged = default_bundle().evaluate(sample_input(kind="deploy", environment="production"))
    assert untagged.obligations.change_window is None
    document = sample_input(kind="deploy", environment="production")
    document["assessment"]["blast_radius"]["tags"].append("business-hours")
    decision = default_bundle().evaluate(document)
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement.count == 1
    assert decision.requirement.from_ == ()
    assert decision.requirement.distinct_from == ("proposer-owner",)
    assert decision.requirement.expires_in == 86400
    assert decision.obligations.change_window == ChangeWindow(
        days=("mon", "tue", "wed", "thu", "fri"),
        start=ChangeWindow().start.replace(hour=8),
        end=ChangeWindow().start.replace(hour=18),
        timezone="UTC",
    )


def test_revenue_path_needs_two_owners_of_the_targets() -> None:
    decision = default_bundle().evaluate(assessed("patch", "production", revenue_path=True))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement.count == 2
    assert decision.requirement.from_ == ("owner-of:service:checkout",)
    assert decision.requirement.eligible == ()
    assert decision.reasons == (
        "changes in production need human approval",
        "the blast radius includes a revenue path",
    )


@pytest.mark.parametrize(("count", "approvals"), [(25, 0), (26, 1), (200, 1), (201, 2)])
def test_blast_radius_thresholds(count: int, approvals: int) -> None:
    decision = default_bundle().evaluate(assessed(count=count))
    assert decision.requirement.count == approvals


def test_unknown_targets_need_any_human() -> None:
    decision = default_bundle().evaluate(assessed(unknown=["service:ghost"]))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement.count == 1
    assert decision.requirement.from_ == ()
    assert decision.reasons == (
        "target service:ghost is not in the System Graph: a human must look",
    )


@pytest.mark.parametrize("kind", DESTRUCTIVE)
def test_destructive_kinds_are_denied_whatever_else_holds(kind: str) -> None:
    document = assessed(kind, "production", unknown=["x"], revenue_path=True, count=500)
    decision = default_bundle().evaluate(document)
    assert decision.outcome is Outcome.DENY
    assert decision.reasons == (
        f"action kind {kind} is destructive and is never allowed for agents",
    )
    assert decision.requirement.count == 0


def test_the_library_remembers_decisions_and_reads_little() -> None:
    bundle = default_bundle()
    assert bundle.remembers_decisions
    assert bundle.input_paths == (
        ("assessment", "blast_radius", "count"),
        ("assessment", "blast_radius", "data_classes"),
        ("assessment", "blast_radius", "revenue_path"),
        ("assessment", "blast_radius", "tags"),
        ("assessment", "unknown_targets"),
        ("proposal", "environment"),
        ("proposal", "kind"),
        ("proposal", "targets"),
    )


def test_a_document_without_an_environment_fails_closed() -> None:
    document = sample_input()
    del document["proposal"]["environment"]
    with pytest.raises(PolicyError, match=r"data\.placet\.decision"):
        default_bundle().evaluate(document)


def test_default_bundle_is_loaded_once_and_matches_its_directory() -> None:
    assert default_bundle() is default_bundle()
    assert PolicyBundle.load(LIBRARY).digest == default_bundle().digest
