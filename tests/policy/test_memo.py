"""Remembered decisions: reused only when the policy must give the same answer again."""

from __future__ import annotations

from typing import Any

import pytest

from placet.domain.lifecycle import Decision, Outcome
from placet.policy import PolicyBundle, PolicyError, default_bundle, sample_input
from placet.policy.memo import DecisionMemo, remembers
from tests.policy.conftest import BundleWriter
from tests.policy.helpers import HEADER, assessed, decision_rule, library_with

ECHO_KIND = decision_rule('{"outcome": "allow", "reasons": [input.proposal.kind]}')


@pytest.mark.parametrize(
    ("paths", "source", "expected"),
    [
        ((("proposal", "kind"),), "x := input.proposal.kind", True),
        ((("proposal", "agent"),), "x := input.proposal.agent", True),
        (None, "x := input", False),
        ((("now",),), "x := input.now", False),
        ((("proposal",),), "x := input.proposal", False),
        ((("proposal", "id"),), "x := input.proposal.id", False),
        ((("proposal", "digest"),), "x := input.proposal.digest", False),
        ((("proposal", "kind"),), "x := time.now_ns()", False),
        ((("proposal", "kind"),), "x := rand.intn(input.proposal.kind, 9)", False),
        ((("proposal", "kind"),), "x := uuid.rfc4122(input.proposal.kind)", False),
        ((("proposal", "kind"),), "x := opa.runtime().env", False),
        ((("proposal", "kind"),), '# time.now_ns() in a comment\nx := "rand.intn"', True),
    ],
)
def test_when_decisions_are_remembered(
    paths: tuple[tuple[str, ...], ...] | None, source: str, expected: bool
) -> None:
    assert remembers(paths, [source]) is expected


def test_the_same_readable_input_reuses_the_decision() -> None:
    bundle = default_bundle()
    assert bundle.remembers_decisions
    first = bundle.evaluate(sample_input(kind="deploy", environment="production"))
    other = sample_input(kind="deploy", environment="production")
    other["proposal"]["intent"] = "something else entirely"
    other["proposal"]["id"] = "prp_other"
    # The default bundle does not read these parts of the assessment.
    other["assessment"]["graph_version"] = {"id": "gv_other", "digest": "cd" * 32}
    other["assessment"]["targets"][0]["reach"]["reachable"] = False
    other["assessment"]["internet_reachable"] = []
    assert bundle.evaluate(other) is first
    assert bundle.evaluate(sample_input(kind="deploy", environment="qa")) is not first


@pytest.mark.parametrize(
    "change",
    [
        {"unknown": ["service:ghost"]},
        {"revenue_path": True},
        {"data_classes": ["pii"]},
        {"count": 26},
        {"count": 4},  # the same decision, but a different readable input: asked afresh
    ],
)
def test_a_different_assessment_is_decided_afresh(change: dict[str, Any]) -> None:
    bundle = default_bundle()
    quiet = bundle.evaluate(assessed("patch"))
    assert quiet.outcome is Outcome.ALLOW
    changed = bundle.evaluate(assessed("patch", **change))
    assert changed is not quiet
    fresh = PolicyBundle.from_files(
        library_with({"id.rego": HEADER + "id := input.proposal.id\n"}),
        name="fresh",
    )
    want = fresh.evaluate(assessed("patch", **change))
    assert (changed.outcome, changed.reasons) == (want.outcome, want.reasons)


def test_a_remembered_decision_equals_a_fresh_one(write_bundle: BundleWriter) -> None:
    remembering = PolicyBundle.load(write_bundle({"p.rego": ECHO_KIND}))
    fresh = PolicyBundle.load(
        write_bundle({"p.rego": ECHO_KIND, "id.rego": HEADER + "id := input.proposal.id\n"})
    )
    assert remembering.remembers_decisions
    assert not fresh.remembers_decisions
    for kind in ["restart", "deploy", "restart", "patch", "deploy"]:
        document = sample_input(kind=kind)
        got = remembering.evaluate(document)
        want = fresh.evaluate(document)
        assert (got.outcome, got.reasons, got.requirement) == (
            want.outcome,
            want.reasons,
            want.requirement,
        )
        assert got.reasons == (kind,)


def test_types_are_told_apart(write_bundle: BundleWriter) -> None:
    # 1, true and "1" print alike, but the remembered decision for one is not reused for
    # another: the policy sees a different type each time.
    source = decision_rule(
        '{"outcome": "allow", "reasons": [type_name(v), sprintf("%v", [v])]}',
        "v := input.proposal.parameters.v\n",
    )
    bundle = PolicyBundle.load(write_bundle({"p.rego": source}))
    assert bundle.remembers_decisions
    seen = []
    for value in [1, True, "1", 1.5, [1], None, 1, "1"]:
        document = sample_input()
        document["proposal"]["parameters"]["v"] = value
        seen.append(bundle.evaluate(document).reasons)
    assert seen == [
        ("number", "1"),
        ("boolean", "true"),
        ("string", "1"),
        ("number", "1.5"),
        ("array", "[1]"),
        ("null",),  # repeated reasons collapse
        ("number", "1"),
        ("string", "1"),
    ]


def test_failures_are_not_remembered(write_bundle: BundleWriter) -> None:
    source = decision_rule(
        '{"outcome": "allow", "reasons": ["ok"]} if input.proposal.kind == "restart"'
    )
    bundle = PolicyBundle.load(write_bundle({"p.rego": source}))
    for _ in range(2):
        with pytest.raises(PolicyError, match="undefined"):
            bundle.evaluate(sample_input(kind="deploy"))
    assert bundle.evaluate(sample_input(kind="restart")).outcome is Outcome.ALLOW


def test_the_memo_forgets_the_least_recently_used() -> None:
    memo = DecisionMemo(size=2)
    decisions = {name: Decision(outcome=Outcome.ALLOW, reasons=(name,)) for name in "abc"}
    keys = {name: memo.key({"proposal": {"kind": name}}) for name in "abc"}
    memo.put(keys["a"], decisions["a"])
    memo.put(keys["b"], decisions["b"])
    assert memo.get(keys["a"]) is decisions["a"]  # a is now the most recently used
    memo.put(keys["c"], decisions["c"])
    assert len(memo) == 2
    assert memo.get(keys["b"]) is None
    assert memo.get(keys["a"]) is decisions["a"]
    assert memo.get(keys["c"]) is decisions["c"]


def test_values_without_an_exact_key_are_not_remembered() -> None:
    memo = DecisionMemo()
    assert memo.key({"proposal": {1: "x"}}) is None
    assert memo.key({"proposal": {"x": b"bytes"}}) is None
    assert memo.key({"proposal": {"a": 1}}) != memo.key({"proposal": {"a": True}})
    assert memo.key({"a": [1, 2]}) == memo.key({"a": (1, 2)})
