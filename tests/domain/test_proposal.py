"""parse_proposal checks an agent's body field by field; the digest binds the content."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from placet.domain import actions
from placet.domain.errors import InputError
from placet.domain.proposal import MAX_INTENT, ProposalContent, parse_proposal

AGENT = "01JAGENT0000000000000000AA"


def shell_body(**changes: Any) -> dict[str, Any]:
    """A valid shell proposal body, with ``changes`` applied (None removes a field)."""
    body: dict[str, Any] = {
        "kind": "shell",
        "targets": ["service:payments"],
        "parameters": {"argv": ["systemctl", "restart", "payments"], "timeout": 30},
        "environment": "production",
        "intent": "restart payments after the config change",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def field_of(body: Any) -> str:
    with pytest.raises(InputError) as caught:
        parse_proposal(body, AGENT)
    error = caught.value
    assert str(error).startswith(f"{error.field}: ")
    assert error.problem
    return error.field


# ---- accepted bodies ---------------------------------------------------------------


def test_a_good_shell_body_is_parsed() -> None:
    content = parse_proposal(shell_body(), AGENT)
    assert content == ProposalContent(
        agent=AGENT,
        kind="shell",
        targets=("service:payments",),
        parameters={"argv": ["systemctl", "restart", "payments"], "timeout": 30},
        environment="production",
        intent="restart payments after the config change",
    )
    assert content.verify is None
    assert content.scope == ()


def test_a_full_body_keeps_every_field() -> None:
    body = shell_body(
        targets=["service:payments", "db:ledger"],
        verify={"argv": ["curl", "-f", "http://payments/healthz"], "timeout": 5.5, "cwd": "/srv"},
        scope=["payments"],
        environment="staging-eu.2",
    )
    body["parameters"]["cwd"] = "/srv/payments"
    content = parse_proposal(body, AGENT)
    assert content.targets == ("service:payments", "db:ledger")
    assert content.verify == body["verify"]
    assert content.scope == ("payments",)
    assert content.environment == "staging-eu.2"
    assert content.parameters["cwd"] == "/srv/payments"
    assert content.as_dict() == {"agent": AGENT, **body}


# Kinds whose parameters are checked (shell, git-patch, http) have their own tests.
CHECKED_KINDS = {"shell", "git-patch", "http"}


@pytest.mark.parametrize("kind", [k for k in actions.names() if k not in CHECKED_KINDS])
def test_every_declared_kind_is_accepted(kind: str) -> None:
    content = parse_proposal(shell_body(kind=kind, parameters={"replicas": 3}), AGENT)
    assert content.kind == kind
    assert content.parameters == {"replicas": 3}


def test_parameters_default_to_an_empty_object() -> None:
    content = parse_proposal(shell_body(kind="restart", parameters=None), AGENT)
    assert content.parameters == {}
    assert content.as_dict()["parameters"] == {}


def test_an_intent_of_exactly_the_maximum_length_is_accepted() -> None:
    content = parse_proposal(shell_body(intent="x" * MAX_INTENT), AGENT)
    assert len(content.intent) == MAX_INTENT


def test_the_agent_comes_from_the_caller_not_the_body() -> None:
    assert field_of(shell_body(agent="someone-else")) == "agent"
    assert parse_proposal(shell_body(), "agent-2").agent == "agent-2"


# ---- rejected bodies: each names its field ------------------------------------------


@pytest.mark.parametrize("body", [None, [], "kind=shell", 42, ["kind", "shell"]])
def test_a_body_that_is_not_an_object(body: Any) -> None:
    assert field_of(body) == "body"


def test_an_unknown_field_is_named() -> None:
    assert field_of(shell_body(priority="high")) == "priority"


@pytest.mark.parametrize("kind", [None, "", 7, ["shell"]])
def test_kind_missing_empty_or_not_a_string(kind: Any) -> None:
    body = shell_body()
    if kind is None:
        del body["kind"]
    else:
        body["kind"] = kind
    assert field_of(body) == "kind"


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as caught:
        parse_proposal(shell_body(kind="reboot_planet"), AGENT)
    assert caught.value.field == "kind"
    assert "reboot_planet" in caught.value.problem
    assert "shell" in caught.value.problem


def test_targets_missing() -> None:
    assert field_of(shell_body(targets=None)) == "targets"


@pytest.mark.parametrize("targets", [[], "service:payments", {"a": 1}, 5])
def test_targets_empty_or_not_a_list(targets: Any) -> None:
    assert field_of(shell_body(targets=targets)) == "targets"


def test_too_many_targets() -> None:
    assert field_of(shell_body(targets=[f"t{i}" for i in range(1001)])) == "targets"


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        ([3], "targets[0]"),
        (["ok", None], "targets[1]"),
        (["ok", "x", ""], "targets[2]"),
        (["  "], "targets[0]"),
        (["a", ["b"]], "targets[1]"),
    ],
)
def test_a_target_that_is_not_a_non_empty_string(targets: list[Any], field: str) -> None:
    assert field_of(shell_body(targets=targets)) == field


@pytest.mark.parametrize("parameters", [[], "argv=ls", 1, True])
def test_parameters_not_an_object(parameters: Any) -> None:
    assert field_of(shell_body(parameters=parameters)) == "parameters"


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({}, "parameters.argv"),
        ({"timeout": 5}, "parameters.argv"),
        ({"argv": []}, "parameters.argv"),
        ({"argv": "ls -l"}, "parameters.argv"),
        ({"argv": ["ls", 3]}, "parameters.argv[1]"),
        ({"argv": [None]}, "parameters.argv[0]"),
        ({"argv": ["", "-l"]}, "parameters.argv[0]"),
        ({"argv": ["ls"], "timeout": 0}, "parameters.timeout"),
        ({"argv": ["ls"], "timeout": -1}, "parameters.timeout"),
        ({"argv": ["ls"], "timeout": 3600.5}, "parameters.timeout"),
        ({"argv": ["ls"], "timeout": "30"}, "parameters.timeout"),
        ({"argv": ["ls"], "timeout": True}, "parameters.timeout"),
        ({"argv": ["ls"], "timeout": float("nan")}, "parameters.timeout"),
        ({"argv": ["ls"], "timeout": float("inf")}, "parameters.timeout"),
        ({"argv": ["ls"], "cwd": ""}, "parameters.cwd"),
        ({"argv": ["ls"], "cwd": 7}, "parameters.cwd"),
    ],
)
def test_bad_shell_parameters(parameters: dict[str, Any], field: str) -> None:
    assert field_of(shell_body(parameters=parameters)) == field


@pytest.mark.parametrize("timeout", [0.001, 1, 3600, 3600.0])
def test_timeouts_within_the_limit_are_accepted(timeout: float) -> None:
    content = parse_proposal(shell_body(parameters={"argv": ["ls"], "timeout": timeout}), AGENT)
    assert content.parameters["timeout"] == timeout


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**60, {"nested": {1, 2}}, b"bytes", {"k": {3: "int key"}}],
)
def test_parameters_that_have_no_canonical_json_are_refused(value: Any) -> None:
    # A digest must exist for every accepted proposal (found: these used to pass parsing
    # and then failed in the digest with an rfc8785 error instead of an InputError).
    body = shell_body(kind="scale", parameters={"value": value})
    assert field_of(body) == "parameters"


@pytest.mark.parametrize(
    "environment",
    [None, "", "Production", "prod env", "-prod", "a" * 64, 7, "production\n", "prod/eu"],
)
def test_environment_missing_or_invalid(environment: Any) -> None:
    body = shell_body()
    if environment is None:
        del body["environment"]
    else:
        body["environment"] = environment
    assert field_of(body) == "environment"


@pytest.mark.parametrize("environment", ["production", "a", "a" * 63, "eu-1_b.c", "0prod"])
def test_valid_environments(environment: str) -> None:
    assert parse_proposal(shell_body(environment=environment), AGENT).environment == environment


@pytest.mark.parametrize("intent", [None, "", "   \n\t", 5, "x" * (MAX_INTENT + 1)])
def test_intent_missing_empty_or_too_long(intent: Any) -> None:
    body = shell_body()
    if intent is None:
        del body["intent"]
    else:
        body["intent"] = intent
    assert field_of(body) == "intent"


@pytest.mark.parametrize(
    ("verify", "field"),
    [
        (["true"], "verify"),
        ("curl -f http://x", "verify"),
        ({"argv": ["true"], "retries": 3}, "verify"),
        ({}, "verify.argv"),
        ({"argv": []}, "verify.argv"),
        ({"argv": ["curl", 1]}, "verify.argv[1]"),
        ({"argv": [""]}, "verify.argv[0]"),
        ({"argv": ["true"], "timeout": 0}, "verify.timeout"),
        ({"argv": ["true"], "timeout": "5"}, "verify.timeout"),
        ({"argv": ["true"], "timeout": 7200}, "verify.timeout"),
        ({"argv": ["true"], "cwd": 5}, "verify.cwd"),
        ({"argv": ["true"], "cwd": ""}, "verify.cwd"),
    ],
)
def test_verify_malformed(verify: Any, field: str) -> None:
    assert field_of(shell_body(verify=verify)) == field


@pytest.mark.parametrize(
    ("scope", "field"), [("all", "scope"), ([""], "scope[0]"), ([1], "scope[0]")]
)
def test_scope_malformed(scope: Any, field: str) -> None:
    assert field_of(shell_body(scope=scope)) == field


def test_the_first_bad_field_is_reported() -> None:
    body = shell_body(kind="", targets=[], intent="")
    assert field_of(body) == "kind"


# ---- immutability ------------------------------------------------------------------


def test_changing_the_body_after_parsing_does_not_change_the_proposal() -> None:
    body = shell_body(verify={"argv": ["true"]})
    content = parse_proposal(body, AGENT)
    digest = content.digest
    body["parameters"]["argv"].append("--force")
    body["parameters"]["timeout"] = 60
    body["verify"]["argv"][0] = "false"
    body["targets"].append("db:ledger")
    assert content.digest == digest
    assert content.parameters["argv"] == ["systemctl", "restart", "payments"]
    assert content.verify == {"argv": ["true"]}


def test_changing_as_dict_does_not_change_the_proposal() -> None:
    content = parse_proposal(shell_body(verify={"argv": ["true"]}), AGENT)
    digest = content.digest
    view = content.as_dict()
    view["parameters"]["argv"].append("--force")
    view["verify"]["argv"].append("--now")
    view["targets"].append("db:ledger")
    assert content.digest == digest
    assert content.as_dict() != view


# ---- the digest --------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=20)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "agent": names,
    "kind": st.sampled_from(actions.names()),
    "targets": st.lists(names, min_size=1, max_size=4).map(tuple),
    "parameters": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    "environment": st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True),
    "intent": st.text(min_size=1, max_size=60),
    "verify": st.none()
    | st.fixed_dictionaries(
        {"argv": st.lists(names, min_size=1, max_size=3)},
        optional={"timeout": st.integers(1, 3600)},
    ),
    "scope": st.lists(names, max_size=3).map(tuple),
}
FIELDS = list(FIELD_VALUES)
contents = st.builds(ProposalContent, **FIELD_VALUES)


def test_digest_is_sha256_of_the_canonical_json_of_as_dict() -> None:
    content = parse_proposal(shell_body(), AGENT)
    expected = (
        b'{"agent":"01JAGENT0000000000000000AA","environment":"production",'
        b'"intent":"restart payments after the config change","kind":"shell",'
        b'"parameters":{"argv":["systemctl","restart","payments"],"timeout":30},'
        b'"scope":[],"targets":["service:payments"]}'
    )
    assert rfc8785.dumps(content.as_dict()) == expected
    assert content.digest == hashlib.sha256(expected).hexdigest()
    assert len(content.digest) == 64
    assert content.digest == content.digest.lower()


@given(contents)
def test_digest_matches_an_independent_computation(content: ProposalContent) -> None:
    expected = hashlib.sha256(rfc8785.dumps(content.as_dict())).hexdigest()
    assert content.digest == expected
    assert content.digest == copy.deepcopy(content).digest


def _reorder(value: Any) -> Any:
    """The same JSON value with every object's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


@given(contents)
def test_digest_does_not_depend_on_key_order(content: ProposalContent) -> None:
    reordered = ProposalContent(
        agent=content.agent,
        kind=content.kind,
        targets=content.targets,
        parameters=_reorder(dict(content.parameters)),
        environment=content.environment,
        intent=content.intent,
        verify=None if content.verify is None else _reorder(dict(content.verify)),
        scope=content.scope,
    )
    assert reordered.digest == content.digest


@given(st.permutations(list(shell_body().items())))
def test_parsed_digest_does_not_depend_on_body_key_order(items: list[tuple[str, Any]]) -> None:
    assert parse_proposal(dict(items), AGENT).digest == parse_proposal(shell_body(), AGENT).digest


def test_each_field_is_covered_by_the_digest() -> None:
    base = parse_proposal(shell_body(), AGENT)
    variants: dict[str, dict[str, Any]] = {
        "agent": {"agent": "another-agent"},
        "kind": {"kind": "restart"},
        "targets": {"targets": ("service:payments", "db:ledger")},
        "parameters": {"parameters": {"argv": ["systemctl", "restart", "payments"], "timeout": 31}},
        "environment": {"environment": "staging"},
        "intent": {"intent": "restart payments after the config change."},
        "verify": {"verify": {"argv": ["true"]}},
        "scope": {"scope": ("payments",)},
    }
    assert set(variants) == set(FIELDS)
    digests = {base.digest}
    for change in variants.values():
        digests.add(replace(base, **change).digest)
    assert len(digests) == 1 + len(variants)


@given(contents, st.data())
def test_digest_changes_when_any_field_changes(
    content: ProposalContent, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(FIELDS), label="field")
    old = getattr(content, field)
    new = data.draw(
        FIELD_VALUES[field].filter(lambda value: rfc8785.dumps(value) != rfc8785.dumps(old)),
        label="new value",
    )
    changed = replace(content, **{field: new})
    assert changed.digest != content.digest
