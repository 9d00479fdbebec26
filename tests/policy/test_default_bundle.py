"""The packaged default bundle: deny destructive kinds; require one approval in production,
for targets not in the System Graph, and for a blast radius with a revenue path, regulated
data or more than 25 nodes; allow the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from placet.domain import actions
from placet.domain.lifecycle import Outcome, Requirement
from placet.policy import PolicyBundle, PolicyError, default_bundle, sample_input
from placet.policy.bundle import default_bundle_files
from tests.policy.helpers import assessed, rebuild

DESTRUCTIVE = ("delete_resource", "drop_database", "destroy_environment", "purge_data")
ONE = Requirement(count=1, any_of=())
PRODUCTION = "changes in production need one human approval"
REVENUE = "the blast radius includes a revenue path"


def unknown_reason(target: str) -> str:
    """The reason the default bundle gives for a target the graph does not hold."""
    return f"target {target} is not in the System Graph: a human must look"


def regulated_reason(data_class: str) -> str:
    """The reason the default bundle gives for one data class in the blast radius."""
    return f"the blast radius holds regulated data: {data_class}"


def size_reason(count: int) -> str:
    """The reason the default bundle gives for a blast radius over the threshold."""
    return f"the blast radius is {count} nodes, more than 25"


def test_allow_in_staging_with_no_approvals() -> None:
    decision = default_bundle().evaluate(sample_input(kind="restart", environment="staging"))
    assert decision.outcome is Outcome.ALLOW
    assert decision.reasons == ("no rule requires approval in staging",)
    assert decision.requirement == Requirement(count=0)


def test_production_alone_needs_one_human_approval() -> None:
    decision = default_bundle().evaluate(sample_input(kind="deploy", environment="production"))
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement == ONE
    assert decision.reasons == (PRODUCTION,)


@pytest.mark.parametrize(
    ("document", "reasons"),
    [
        (assessed(unknown=["service:ghost"]), [unknown_reason("service:ghost")]),
        (
            assessed(unknown=["service:ghost", "db:shadow"]),
            [unknown_reason("db:shadow"), unknown_reason("service:ghost")],
        ),
        (assessed(revenue_path=True), [REVENUE]),
        (assessed(data_classes=["pii"]), [regulated_reason("pii")]),
        (assessed(data_classes=["pci"]), [regulated_reason("pci")]),
        (assessed(data_classes=["phi"]), [regulated_reason("phi")]),
        (
            assessed(data_classes=["pii", "phi", "pci"]),
            [regulated_reason("pci"), regulated_reason("phi"), regulated_reason("pii")],
        ),
        (assessed(count=26), [size_reason(26)]),
    ],
    ids=[
        "unknown-target",
        "two-unknown-targets",
        "revenue-path",
        "pii",
        "pci",
        "phi",
        "three-data-classes",
        "radius-26",
    ],
)
def test_each_assessment_reason_alone_needs_one_approval_outside_production(
    document: dict[str, Any], reasons: list[str]
) -> None:
    decision = default_bundle().evaluate(document)
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement == ONE
    assert list(decision.reasons) == reasons


@pytest.mark.parametrize(
    ("count", "outcome"), [(0, "allow"), (25, "allow"), (26, "require_approval")]
)
def test_the_blast_radius_threshold_is_more_than_25_nodes(count: int, outcome: str) -> None:
    decision = default_bundle().evaluate(assessed(count=count))
    assert decision.outcome is Outcome(outcome)
    if outcome == "allow":
        assert decision.reasons == ("no rule requires approval in staging",)
    else:
        assert decision.reasons == (size_reason(count),)


def test_the_threshold_is_data_in_the_bundle() -> None:
    source = default_bundle_files().joinpath("placet.rego").read_text()
    assert "max_blast_radius := 25\n" in source
    big = default_bundle().evaluate(assessed(count=10_000))
    assert big.reasons == ("the blast radius is 10000 nodes, more than 25",)


def test_every_reason_together_is_listed_once_and_sorted() -> None:
    document = assessed(
        "deploy",
        "production",
        unknown=["service:ghost", "db:shadow"],
        revenue_path=True,
        data_classes=["pii", "pci", "pii"],
        count=40,
    )
    decision = default_bundle().evaluate(document)
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement == ONE  # one approval, however many reasons
    assert decision.reasons == (
        PRODUCTION,
        unknown_reason("db:shadow"),
        unknown_reason("service:ghost"),
        regulated_reason("pci"),
        regulated_reason("pii"),
        REVENUE,
        size_reason(40),
    )
    assert list(decision.reasons) == sorted(decision.reasons)


def test_two_reasons_together_are_sorted() -> None:
    document = assessed("restart", "production", revenue_path=True)
    decision = default_bundle().evaluate(document)
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.reasons == (PRODUCTION, REVENUE)


def test_with_no_graph_imported_every_target_is_unknown_and_needs_a_human() -> None:
    # What the assessment says before any graph is imported: no version, nothing known.
    targets = ["service:checkout", "db:orders"]
    no_graph = {
        "graph_version": None,
        "targets": [{"id": t, "known": False} for t in targets],
        "unknown_targets": targets,
        "blast_radius": {
            "count": 0,
            "nodes": [],
            "tags": [],
            "owners": [],
            "data_classes": [],
            "revenue_path": False,
        },
        "internet_reachable": [],
    }
    for kind in ("restart", "deploy", "shell"):
        document = rebuild(sample_input(kind=kind), targets=targets, assessment=no_graph)
        assert document["assessment"]["graph_version"] is None
        decision = default_bundle().evaluate(document)
        assert decision.outcome is Outcome.REQUIRE_APPROVAL, kind
        assert decision.requirement == ONE
        assert decision.reasons == (unknown_reason("db:orders"), unknown_reason("service:checkout"))


def test_a_known_target_in_a_quiet_radius_is_allowed() -> None:
    document = assessed(revenue_path=False, data_classes=[], count=25)
    assert document["assessment"]["unknown_targets"] == []
    assert default_bundle().evaluate(document).outcome is Outcome.ALLOW


APPROVAL_TRIGGERS: dict[str, dict[str, Any]] = {
    "production": {"environment": "production"},
    "unknown-target": {"unknown": ["service:ghost"]},
    "revenue-path": {"revenue_path": True},
    "regulated-data": {"data_classes": ["pci", "pii"]},
    "big-radius": {"count": 26},
    "all": {
        "environment": "production",
        "unknown": ["service:ghost"],
        "revenue_path": True,
        "data_classes": ["phi"],
        "count": 500,
    },
}


@pytest.mark.parametrize("kind", DESTRUCTIVE)
@pytest.mark.parametrize("trigger", sorted(APPROVAL_TRIGGERS))
def test_deny_beats_every_approval_reason(kind: str, trigger: str) -> None:
    options = dict(APPROVAL_TRIGGERS[trigger])
    environment = str(options.pop("environment", "staging"))
    document = assessed(kind, environment, **options)
    decision = default_bundle().evaluate(document)
    assert decision.outcome is Outcome.DENY
    assert decision.requirement.count == 0
    assert decision.reasons == (f"action kind {kind} is destructive and is never allowed",)


@pytest.mark.parametrize("kind", DESTRUCTIVE)
@pytest.mark.parametrize("environment", ["staging", "dev", "production"])
def test_destructive_kinds_are_denied_with_the_kind_named(kind: str, environment: str) -> None:
    decision = default_bundle().evaluate(sample_input(kind=kind, environment=environment))
    assert decision.outcome is Outcome.DENY
    assert decision.requirement.count == 0
    assert len(decision.reasons) == 1
    assert kind in decision.reasons[0]
    assert "destructive" in decision.reasons[0]


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


def test_the_default_bundle_reads_kind_environment_unknown_targets_and_the_radius() -> None:
    assert default_bundle().input_paths == (
        ("assessment", "blast_radius", "count"),
        ("assessment", "blast_radius", "data_classes"),
        ("assessment", "blast_radius", "revenue_path"),
        ("assessment", "unknown_targets"),
        ("proposal", "environment"),
        ("proposal", "kind"),
    )
    assert default_bundle().remembers_decisions


def _default_sources() -> dict[str, str]:
    root = default_bundle_files()
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".rego")
    }
