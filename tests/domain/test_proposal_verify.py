"""The `verify` forms (argv or http, retried) and the declared `rollback` of a proposal."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785

from placet.domain.errors import InputError
from placet.domain.proposal import parse_proposal

AGENT = "01JAGENT0000000000000000AA"
ROLLBACK = {
    "kind": "shell",
    "targets": ["service:payments"],
    "parameters": {"argv": ["git", "revert", "--no-edit", "HEAD"]},
    "intent": "undo the config change",
}


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "shell",
        "targets": ["service:payments"],
        "parameters": {"argv": ["deploy", "payments"]},
        "environment": "production",
        "intent": "deploy payments",
    }
    return {**base, **changes}


def field_of(value: dict[str, Any]) -> str:
    with pytest.raises(InputError) as caught:
        parse_proposal(value, AGENT)
    assert caught.value.problem
    return caught.value.field


# ---- verify ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verify",
    [
        {"argv": ["curl", "-f", "http://svc/healthz"], "cwd": "sub", "timeout": 30},
        {"argv": ["true"], "retry_for": 60, "interval": 2},
        {"argv": ["true"], "retry_for": 0, "interval": 0.1},
        {"argv": ["true"], "retry_for": 600, "interval": 60},
        {"http": {"url": "http://svc/healthz"}},
        {
            "http": {
                "url": "https://svc.example:8443/healthz?deep=1",
                "method": "HEAD",
                "headers": {"Authorization": "Bearer x", "X-Trace": ""},
                "timeout": 60,
            },
            "retry_for": 30.5,
            "interval": 0.5,
        },
    ],
)
def test_good_verify_forms_are_kept_exactly_as_given(verify: dict[str, Any]) -> None:
    content = parse_proposal(body(verify=verify), AGENT)
    assert content.verify == verify
    assert content.as_dict()["verify"] == verify


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def test_every_http_method_is_accepted(method: str) -> None:
    verify = {"http": {"url": "http://svc/", "method": method}}
    assert parse_proposal(body(verify=verify), AGENT).verify == verify


@pytest.mark.parametrize(
    ("verify", "field"),
    [
        ({"argv": ["true"], "http": {"url": "http://x/"}}, "verify"),
        ({}, "verify.argv"),
        ({"retry_for": 5}, "verify.argv"),
        ({"argv": ["true"], "retry_for": -1}, "verify.retry_for"),
        ({"argv": ["true"], "retry_for": 601}, "verify.retry_for"),
        ({"argv": ["true"], "retry_for": "5"}, "verify.retry_for"),
        ({"argv": ["true"], "retry_for": True}, "verify.retry_for"),
        ({"argv": ["true"], "interval": 0.05}, "verify.interval"),
        ({"argv": ["true"], "interval": 0}, "verify.interval"),
        ({"argv": ["true"], "interval": 61}, "verify.interval"),
        ({"argv": ["true"], "interval": None}, "verify.interval"),
        ({"http": "http://x/"}, "verify.http"),
        ({"http": {"url": "http://x/", "body": "{}"}}, "verify.http"),
        ({"http": {}}, "verify.http.url"),
        ({"http": {"url": ""}}, "verify.http.url"),
        ({"http": {"url": 5}}, "verify.http.url"),
        ({"http": {"url": "ftp://x/"}}, "verify.http.url"),
        ({"http": {"url": "svc/healthz"}}, "verify.http.url"),
        ({"http": {"url": "http:///healthz"}}, "verify.http.url"),
        ({"http": {"url": "http://[::1/"}}, "verify.http.url"),
        ({"http": {"url": "http://x/a b"}}, "verify.http.url"),
        ({"http": {"url": "http://x/", "method": "get"}}, "verify.http.method"),
        ({"http": {"url": "http://x/", "method": "TRACE"}}, "verify.http.method"),
        ({"http": {"url": "http://x/", "headers": []}}, "verify.http.headers"),
        ({"http": {"url": "http://x/", "headers": {"Bad Name": "v"}}}, "verify.http.headers"),
        ({"http": {"url": "http://x/", "headers": {"X-A": 1}}}, "verify.http.headers.X-A"),
        (
            {"http": {"url": "http://x/", "headers": {"X-A": "a\r\nB: c"}}},
            "verify.http.headers.X-A",
        ),
        ({"http": {"url": "http://x/", "timeout": 0}}, "verify.http.timeout"),
        ({"http": {"url": "http://x/", "timeout": 61}}, "verify.http.timeout"),
        ({"http": {"url": "http://x/", "timeout": "5"}}, "verify.http.timeout"),
        ({"http": {"url": "http://x/"}, "timeout": 5}, "verify.timeout"),
        ({"http": {"url": "http://x/"}, "cwd": "sub"}, "verify.cwd"),
    ],
)
def test_bad_verify_forms_name_the_field(verify: Any, field: str) -> None:
    assert field_of(body(verify=verify)) == field


def test_a_proposal_without_the_new_fields_keeps_its_digest() -> None:
    content = parse_proposal(body(verify={"argv": ["true"]}), AGENT)
    expected = (
        b'{"agent":"01JAGENT0000000000000000AA","environment":"production",'
        b'"intent":"deploy payments","kind":"shell","parameters":{"argv":["deploy","payments"]},'
        b'"scope":[],"targets":["service:payments"],"verify":{"argv":["true"]}}'
    )
    assert rfc8785.dumps(content.as_dict()) == expected
    assert content.digest == hashlib.sha256(expected).hexdigest()


# ---- rollback ----------------------------------------------------------------------


def test_a_rollback_is_parsed_like_a_proposal_by_the_same_agent_in_the_same_environment() -> None:
    rollback = {**ROLLBACK, "verify": {"http": {"url": "http://payments/healthz"}}}
    content = parse_proposal(body(rollback=rollback, scope=["payments"]), AGENT)
    assert content.rollback is not None
    assert content.rollback.agent == AGENT
    assert content.rollback.environment == "production"
    assert content.rollback.rollback is None
    assert content.rollback.scope == ()  # the original's scope is not inherited
    assert content.as_dict()["rollback"] == {**rollback, "scope": []}
    assert content.rollback_body() == {**rollback, "scope": [], "environment": "production"}
    filed = parse_proposal(content.rollback_body(), AGENT)
    assert filed == content.rollback
    assert parse_proposal(body(), AGENT).rollback_body() is None


def test_the_rollback_is_covered_by_the_digest_and_round_trips() -> None:
    plain = parse_proposal(body(), AGENT)
    declared = parse_proposal(body(rollback=ROLLBACK), AGENT)
    other = parse_proposal(body(rollback={**ROLLBACK, "intent": "undo it"}), AGENT)
    assert len({plain.digest, declared.digest, other.digest}) == 3
    # the stored form (as_dict) parses back to the same content: what a runner's capsule does
    stored = declared.as_dict()
    agent = stored.pop("agent")
    assert parse_proposal(stored, agent).digest == declared.digest


def test_a_rollback_may_repeat_the_environment_but_not_change_it() -> None:
    same = parse_proposal(body(rollback={**ROLLBACK, "environment": "production"}), AGENT)
    assert same == parse_proposal(body(rollback=ROLLBACK), AGENT)


@pytest.mark.parametrize(
    ("rollback", "field"),
    [
        ("undo", "rollback"),
        ([ROLLBACK], "rollback"),
        ({**ROLLBACK, "rollback": ROLLBACK}, "rollback.rollback"),
        ({**ROLLBACK, "agent": "someone-else"}, "rollback.agent"),
        ({**ROLLBACK, "environment": "staging"}, "rollback.environment"),
        ({**ROLLBACK, "kind": "teleport"}, "rollback.kind"),
        ({k: v for k, v in ROLLBACK.items() if k != "kind"}, "rollback.kind"),
        ({k: v for k, v in ROLLBACK.items() if k != "targets"}, "rollback.targets"),
        ({**ROLLBACK, "targets": []}, "rollback.targets"),
        ({**ROLLBACK, "parameters": {"argv": []}}, "rollback.parameters.argv"),
        ({**ROLLBACK, "intent": " "}, "rollback.intent"),
        ({**ROLLBACK, "verify": {"http": {"url": "ftp://x/"}}}, "rollback.verify.http.url"),
        ({**ROLLBACK, "scope": [""]}, "rollback.scope[0]"),
    ],
)
def test_bad_rollbacks_name_the_field(rollback: Any, field: str) -> None:
    assert field_of(body(rollback=rollback)) == field


def test_the_original_is_checked_before_its_rollback() -> None:
    assert field_of(body(intent="", rollback={"kind": "teleport"})) == "intent"
