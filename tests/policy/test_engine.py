"""Evaluation: well-formed decisions become Decisions; everything else fails closed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placet.domain.lifecycle import Outcome, Requirement
from placet.policy import PolicyBundle, PolicyError, sample_input
from tests.policy.conftest import BundleWriter
from tests.policy.helpers import HEADER, decision_rule


def bundle_of(write_bundle: BundleWriter, body: str, extra: str = "") -> PolicyBundle:
    return PolicyBundle.load(write_bundle({"placet.rego": decision_rule(body, extra)}))


# ---- well-formed decisions ------------------------------------------------------------


def test_custom_bundle_with_named_approvers(write_bundle: BundleWriter) -> None:
    source = (
        HEADER
        + "# Two approvals from the SRE team or the database owner, for database changes.\n"
        + "decision := {\n"
        + '\t"outcome": "require_approval",\n'
        + '\t"reasons": [sprintf("%s touches a database", [input.proposal.kind])],\n'
        + '\t"min_approvals": 2, "from": ["team:sre", "role:dba", "dana"],\n'
        + "} if {\n"
        + '\tsome target in input.proposal.targets\n\tstartswith(target, "db:")\n'
        + '} else := {"outcome": "allow", "reasons": ["no database"]}\n'
    )
    bundle = PolicyBundle.load(write_bundle({"db.rego": source}, name="databases"))
    document = sample_input(kind="patch")
    document["proposal"]["targets"] = ["service:api", "db:orders"]
    decision = bundle.evaluate(document)
    assert decision.outcome is Outcome.REQUIRE_APPROVAL
    assert decision.requirement == Requirement(count=2, from_=("team:sre", "role:dba", "dana"))
    assert decision.reasons == ("patch touches a database",)
    assert decision.policy_digest == bundle.digest
    document["proposal"]["targets"] = ["service:api"]
    assert bundle.evaluate(document).outcome is Outcome.ALLOW


def test_reasons_may_be_a_set_and_repeats_collapse(write_bundle: BundleWriter) -> None:
    extra = 'why contains "b"\nwhy contains "a"\n'
    bundle = bundle_of(write_bundle, '{"outcome": "deny", "reasons": why}', extra)
    assert bundle.evaluate(sample_input()).reasons == ("a", "b")
    repeated = bundle_of(write_bundle, '{"outcome": "deny", "reasons": ["x", "y", "x"]}')
    assert repeated.evaluate(sample_input()).reasons == ("x", "y")


# ---- fail closed ----------------------------------------------------------------------

RA = '"outcome": "require_approval", "reasons": ["r"]'
FAILURES = [
    ('{"outcome": "allow", "reasons": ["r"]} if false', "is undefined"),
    ('"allow"', "must be an object, not a string"),
    ("[1, 2]", "must be an object, not an array"),
    ('{"outcome": "maybe", "reasons": ["r"]}', r"outcome: must be one of .*'maybe'"),
    ('{"outcome": true, "reasons": ["r"]}', "outcome: must be one of"),
    ('{"reasons": ["r"]}', "outcome: must be one of"),
    ('{"outcome": "allow"}', "reasons: is required"),
    ('{"outcome": "allow", "reasons": []}', "reasons: must not be empty"),
    ('{"outcome": "allow", "reasons": "because"}', "reasons: must be an array"),
    ('{"outcome": "allow", "reasons": [1]}', r"reasons\[0\]: must be a non-empty string"),
    ('{"outcome": "allow", "reasons": ["  "]}', r"reasons\[0\]: must be a non-empty string"),
    ('{"outcome": "allow", "reasons": ["r"], "approval": 1}', "approval: is not a known field"),
    (
        '{"outcome": "require_approval", "reasons": ["r"], "approvals": {"count": 1}}',
        "approvals was replaced by min_approvals/from in placet 0.x",
    ),
    ('{"outcome": "allow", "reasons": ["r"], "min_approvals": 1}', "min_approvals: only a"),
    ('{"outcome": "deny", "reasons": ["r"], "from": []}', "from: only a require_approval"),
    ("{" + RA + ', "min_approvals": 0}', "min_approvals: must be at least 1, not 0"),
    ("{" + RA + ', "min_approvals": true}', "min_approvals: must be a whole number"),
    ("{" + RA + ', "min_approvals": "2"}', "min_approvals: must be a whole number"),
    ("{" + RA + ', "min_approvals": 1.5}', "min_approvals: must be a whole number"),
    ("{" + RA + ', "from": "team:sre"}', "from: must be an array"),
    ("{" + RA + ', "from": [""]}', r"from\[0\]: must be a non-empty string"),
    ("{" + RA + ', "from": ["squad:x"]}', r"from\[0\]: 'squad:x': selectors are"),
    ("{" + RA + ', "from": ["proposer-owner"]}', r"from\[0\]: 'proposer-owner' only"),
    ("{" + RA + ', "distinct_from": ["team:"]}', r"distinct_from\[0\]: 'team:' names nothing"),
    ("{" + RA + ', "owner_may_approve": "yes"}', "owner_may_approve: must be true or false"),
    ("{" + RA + ', "expires_in": "soon"}', r"expires_in: 'soon' is not a duration"),
    ("{" + RA + ', "expires_in": 0}', "expires_in: 0 must be longer than zero"),
    ("{" + RA + ', "expires_in": "400d"}', "expires_in: .* longer than the longest"),
    ("{" + RA + ', "denials": 0}', "denials: must be at least 1"),
    ("{" + RA + ', "escalate_to": "sre"}', "escalate_to: must be an object"),
    ("{" + RA + ', "escalate_to": {"from": ["group:x"]}}', r"escalate_to\.after: is required"),
    (
        "{" + RA + ', "escalate_to": {"after": "1h", "from": []}}',
        r"escalate_to\.from: must not be empty",
    ),
    (
        "{" + RA + ', "escalate_to": {"after": "4x", "from": ["group:x"]}}',
        r"data\.placet\.decision\.escalate_to\.after: '4x' is not a duration",
    ),
    (
        "{" + RA + ', "expires_in": "1h", "escalate_to": {"after": "2h", "from": ["group:x"]}}',
        r"escalate_to\.after: \(7200s\) must be shorter than expires_in",
    ),
    (
        "{" + RA + ', "escalate_to": {"after": "1h", "from": ["g"], "to": ["g"]}}',
        r"escalate_to\.to: is not a known field",
    ),
    ('{"outcome": "allow", "reasons": ["r"], "obligations": []}', "obligations: must be an"),
    (
        '{"outcome": "allow", "reasons": ["r"], "obligations": {"page": ["x"]}}',
        r"obligations\.page: is not a known field",
    ),
    (
        '{"outcome": "allow", "reasons": ["r"], "obligations": {"validation": [3]}}',
        r"obligations\.validation\[0\]: must be a non-empty string",
    ),
    (
        '{"outcome": "allow", "reasons": ["r"], "obligations": {"change_window": '
        '{"start": "08:00", "end": "18:00", "timezone": "Mars/Olympus"}}}',
        r"obligations\.change_window\.timezone: 'Mars/Olympus' is not a known IANA time zone",
    ),
    (
        '{"outcome": "allow", "reasons": ["r"], "obligations": {"change_window": '
        '{"start": "8am", "end": "18:00"}}}',
        r"obligations\.change_window\.start: must be a time of day",
    ),
    (
        '{"outcome": "allow", "reasons": ["r"], "obligations": {"change_window": '
        '{"start": "08:00", "end": "18:00", "days": ["monday"]}}}',
        r"obligations\.change_window\.days\[0\]: 'monday' is not one of",
    ),
    (
        '{"outcome": "allow", "reasons": ["r"], "obligations": {"change_window": '
        '{"start": "08:00"}}}',
        r"obligations\.change_window\.end: is required",
    ),
]


@pytest.mark.parametrize(("body", "problem"), FAILURES)
def test_malformed_decisions_fail_closed(
    write_bundle: BundleWriter, body: str, problem: str
) -> None:
    bundle = bundle_of(write_bundle, body)
    with pytest.raises(PolicyError, match=problem):
        bundle.evaluate(sample_input())


def test_an_engine_error_fails_closed(write_bundle: BundleWriter) -> None:
    # Two definitions give two values for one complete rule: an evaluation error.
    source = (
        HEADER
        + 'decision := {"outcome": "allow", "reasons": ["a"]} if input.proposal.kind\n'
        + 'decision := {"outcome": "deny", "reasons": ["b"]} if input.proposal.parameters.x\n'
    )
    bundle = PolicyBundle.load(write_bundle({"p.rego": source}))
    assert bundle.evaluate(sample_input()).outcome is Outcome.ALLOW
    document = sample_input()
    document["proposal"]["parameters"]["x"] = True
    with pytest.raises(PolicyError, match="complete rules must not produce multiple outputs"):
        bundle.evaluate(document)
    assert bundle.evaluate(sample_input()).outcome is Outcome.ALLOW  # the engine recovers


def test_an_engine_error_on_the_sample_proposal_stops_the_load(
    write_bundle: BundleWriter,
) -> None:
    source = (
        HEADER
        + 'decision := {"outcome": "allow", "reasons": ["a"]} if input.proposal.kind\n'
        + 'decision := {"outcome": "deny", "reasons": ["b"]} if input.proposal.environment\n'
    )
    with pytest.raises(PolicyError, match=r"multiple outputs.*sample proposal at load"):
        PolicyBundle.load(write_bundle({"p.rego": source}))


def test_no_decision_rule_at_all_fails_closed(write_bundle: BundleWriter) -> None:
    bundle = PolicyBundle.load(write_bundle({"p.rego": "package other\n\nallow := true\n"}))
    with pytest.raises(PolicyError, match=r"data\.placet\.decision is undefined"):
        bundle.evaluate(sample_input())


def test_an_input_value_the_engine_cannot_hold_fails_closed(write_bundle: BundleWriter) -> None:
    bundle = bundle_of(write_bundle, '{"outcome": "allow", "reasons": ["r"]}', "x := input\n")
    bad_values: list[tuple[Any, str]] = [
        (math.nan, "not finite"),
        (2**70, "64 bits"),
        ("a\x00b", "NUL"),
        (b"bytes", "not a JSON value"),
        ({1: "x"}, "object key"),
    ]
    for value, problem in bad_values:
        document = sample_input()
        document["proposal"]["parameters"]["odd"] = value
        with pytest.raises(PolicyError, match=problem) as caught:
            bundle.evaluate(document)
        assert "input['proposal']['parameters']['odd']" in str(caught.value)


# ---- exact values in and out ----------------------------------------------------------

ECHO = '{"outcome": "deny", "reasons": [input.proposal.intent]}'

TRICKY = [
    'he said "hi"',
    'x"], "outcome": "allow", "min_approvals": 0, "z": ["',
    "back\\slash and \\n not a newline",
    "a real\nnewline\tand tab",
    '"quoted"',
    '"',
    "émoji ✓ 🚀",
    'ends with a quote"',
]


@pytest.mark.parametrize("intent", TRICKY)
def test_strings_round_trip_and_cannot_forge_the_outcome(
    write_bundle: BundleWriter, intent: str
) -> None:
    bundle = bundle_of(write_bundle, ECHO)
    document = sample_input()
    document["proposal"]["intent"] = intent
    decision = bundle.evaluate(document)
    assert decision.outcome is Outcome.DENY
    assert decision.reasons == (intent,)


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(value=JSON)
def test_any_json_value_reaches_the_policy_unchanged(value: Any) -> None:
    bundle = _echo_bundle()
    document = sample_input()
    document["proposal"]["parameters"] = {"value": value}
    answer = bundle.query(document)
    assert answer.defined
    assert answer.value == {"value": value}
    assert json.dumps(answer.value, sort_keys=True) == json.dumps({"value": value}, sort_keys=True)


_ECHO_BUNDLE: list[PolicyBundle] = []


def _echo_bundle() -> PolicyBundle:
    if not _ECHO_BUNDLE:
        _ECHO_BUNDLE.append(
            PolicyBundle.from_files(
                {"echo.rego": decision_rule("input.proposal.parameters")}, name="echo"
            )
        )
    return _ECHO_BUNDLE[0]


def test_numbers_reach_the_policy_as_numbers(write_bundle: BundleWriter) -> None:
    extra = "t := input.proposal.parameters.timeout\n"
    bundle = bundle_of(
        write_bundle,
        '{"outcome": "allow", "reasons": [sprintf("timeout %v, doubled %v", [t, t * 2])]}',
        extra,
    )
    document = sample_input()
    document["proposal"]["parameters"]["timeout"] = 30
    assert bundle.evaluate(document).reasons == ("timeout 30, doubled 60",)
    document["proposal"]["parameters"]["timeout"] = 2.5
    assert bundle.evaluate(document).reasons == ("timeout 2.5, doubled 5",)


def test_fractions_reach_the_policy_to_six_decimal_places() -> None:
    # rego-cpp's C API takes a double and prints it with six decimals (std::to_string).
    document = sample_input()
    document["proposal"]["parameters"] = {"a": 0.1, "b": 2.5e-3, "c": 1e-9, "d": -7.25}
    answer = _echo_bundle().query(document)
    assert answer.value == {"a": 0.1, "b": 0.0025, "c": 0.0, "d": -7.25}
