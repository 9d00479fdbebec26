"""The packaged default bundle: deny destructive kinds, approve production, allow the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from placet.domain import actions
from placet.domain.lifecycle import Outcome, Requirement
from placet.policy import PolicyBundle, PolicyError, default_bundle, sample_input
from placet.policy.bundle import default_bundle_files

DESTRUCTIVE = ("delete_resource", "drop_database", "destroy_environment", "purge_data")


def test_allow_in_staging_with_no_approvals() -> None:
    decision = default_bundle().evaluate(sample_input(kind="restart", environment="staging"))
    assert decision.outcome is Outcome.ALLOW
    assert decision.reasons == ("no rule requires approval in staging",)
    assert decision.requirement == Requirement(count=0)


def test_production_needs_one_human_approval() -> None:
    decision = default_bundle().evaluate(sample_input(kind="deploy", environment="production"))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement == Requirement(count=1, any_of=())
    assert len(decision.reasons) == 1
    assert "production" in decision.reasons[0]
    assert "approval" in decision.reasons[0]


@pytest.mark.parametrize("kind", DESTRUCTIVE)
@pytest.mark.parametrize("environment", ["staging", "dev", "production"])
def test_destructive_kinds_are_denied_with_the_kind_named(kind: str, environment: str) -> None:
    decision = default_bundle().evaluate(sample_input(kind=kind, environment=environment))
    assert decision.outcome is Outcome.DENY
    assert decision.requirement.count == 0
    assert len(decision.reasons) == 1
    assert kind in decision.reasons[0]
    assert "destructive" in decision.reasons[0]


def test_deny_beats_the_production_approval_rule() -> None:
    decision = default_bundle().evaluate(sample_input(kind="purge_data", environment="production"))
    assert decision.outcome is Outcome.DENY
    assert not any("approval" in reason for reason in decision.reasons)


def test_every_other_declared_kind_is_allowed_outside_production() -> None:
    bundle = default_bundle()
    for kind in actions.names():
        if kind in DESTRUCTIVE:
            continue
        decision = bundle.evaluate(sample_input(kind=kind, environment="qa"))
        assert decision.outcome is Outcome.ALLOW, kind


def test_the_destructive_list_covers_the_declared_destructive_kinds() -> None:
    declared = set(actions.names())
    assert set(DESTRUCTIVE) <= declared
    source = next(iter(_default_sources().values()))
    for kind in DESTRUCTIVE:
        assert f'"{kind}"' in source


def test_decisions_carry_the_bundle_digest() -> None:
    bundle = default_bundle()
    assert len(bundle.digest) == 64
    decision = bundle.evaluate(sample_input())
    assert decision.policy_digest == bundle.digest
    assert bundle.name == "default"


def test_a_document_without_an_environment_fails_closed() -> None:
    document = sample_input()
    del document["proposal"]["environment"]
    with pytest.raises(PolicyError, match=r"data\.placet\.decision is undefined"):
        default_bundle().evaluate(document)


def test_an_empty_document_fails_closed() -> None:
    with pytest.raises(PolicyError, match="undefined"):
        default_bundle().evaluate({})


def test_default_bundle_is_loaded_once_and_matches_its_directory() -> None:
    assert default_bundle() is default_bundle()
    directory = Path(str(default_bundle_files()))
    assert directory.is_dir()
    assert PolicyBundle.load(directory).digest == default_bundle().digest


def test_the_default_bundle_reads_only_kind_and_environment() -> None:
    assert default_bundle().input_paths == (("proposal", "environment"), ("proposal", "kind"))


def _default_sources() -> dict[str, str]:
    root = default_bundle_files()
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".rego")
    }
